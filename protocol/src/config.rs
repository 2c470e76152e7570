//! What every configuration type of the project has in common: by-value setters that only set
//! (the `setters!` macro), and one `validate` per type, the one place its bounds are written,
//! reporting the first bad field as an [`InvalidConfig`].

use core::fmt;

/// A configuration value out of its bounds: which field, and what it must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidConfig {
    /// `Type.field`, e.g. `ServerConfig.ping_interval`.
    pub field: &'static str,
    /// What the value must be, e.g. `at least 10 ms`.
    pub must_be: &'static str,
}

impl fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.field)?;
        f.write_str(": must be ")?;
        f.write_str(self.must_be)
    }
}

impl core::error::Error for InvalidConfig {}

impl InvalidConfig {
    /// `Err` naming `field` unless `ok`.
    pub fn check(
        ok: bool,
        field: &'static str,
        must_be: &'static str,
    ) -> Result<(), InvalidConfig> {
        if ok {
            Ok(())
        } else {
            Err(InvalidConfig { field, must_be })
        }
    }
}

/// By-value setters for the listed fields (`fn name(mut self, v: T) -> Self`), documented as
/// "Sets [`Type::name`]." They only set; `validate` checks.
#[doc(hidden)]
#[macro_export]
macro_rules! config_setters {
    ($ty:ident { $($name:ident: $t:ty),* $(,)? }) => {
        impl $ty {
            $(
                #[doc = concat!("Sets [`", stringify!($ty), "::", stringify!($name), "`].")]
                pub fn $name(mut self, v: $t) -> Self {
                    self.$name = v;
                    self
                }
            )*
        }
    };
}
