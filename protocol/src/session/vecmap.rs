//! [`VecMap`] and [`VecSet`]: ordered map and set on a sorted `Vec`, for the session's few
//! dozen channels and handles. Same iteration order as `BTreeMap`/`BTreeSet` (ascending keys), a
//! fraction of the code size: the browser SDK compiles the session to wasm, where every
//! `BTreeMap<K, V>` instance costs ~5 KB.

use crate::prelude::*;
use core::borrow::Borrow;

/// A map kept sorted by key.
#[derive(Debug, Clone)]
pub(crate) struct VecMap<K, V>(Vec<(K, V)>);

impl<K: Ord, V> VecMap<K, V> {
    pub(crate) fn new() -> Self {
        VecMap(Vec::new())
    }

    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.0.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    pub(crate) fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    pub(crate) fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| &mut self.0[i].1)
    }

    pub(crate) fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.find(key).is_ok()
    }

    /// Inserts or replaces; returns the previous value.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(i) => Some(core::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    /// The value of `key`, inserted with `f` when absent.
    pub(crate) fn get_or_insert_with(&mut self, key: K, f: impl FnOnce() -> V) -> &mut V {
        let i = match self.find(&key) {
            Ok(i) => i,
            Err(i) => {
                self.0.insert(i, (key, f()));
                i
            }
        };
        &mut self.0[i].1
    }

    pub(crate) fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| self.0.remove(i).1)
    }

    /// Keeps the entries for which `f` returns true, in order.
    pub(crate) fn retain(&mut self, mut f: impl FnMut(&K, &mut V) -> bool) {
        self.0.retain_mut(|(k, v)| f(k, v));
    }

    /// The key at `index` in key order.
    pub(crate) fn key_at(&self, index: usize) -> Option<&K> {
        self.0.get(index).map(|(k, _)| k)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().map(|(_, v)| v)
    }

    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.0.iter_mut().map(|(_, v)| v)
    }
}

/// A set kept sorted.
#[derive(Debug, Clone)]
pub(crate) struct VecSet<K>(Vec<K>);

impl<K: Ord> VecSet<K> {
    pub(crate) fn new() -> Self {
        VecSet(Vec::new())
    }

    /// Inserts; whether it was new.
    pub(crate) fn insert(&mut self, key: K) -> bool {
        match self.0.binary_search(&key) {
            Ok(_) => false,
            Err(i) => {
                self.0.insert(i, key);
                true
            }
        }
    }

    /// Removes; whether it was there.
    pub(crate) fn remove(&mut self, key: &K) -> bool {
        match self.0.binary_search(key) {
            Ok(i) => {
                self.0.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn iter(&self) -> core::slice::Iter<'_, K> {
        self.0.iter()
    }
}

impl<'a, K: Ord> IntoIterator for &'a VecSet<K> {
    type Item = &'a K;
    type IntoIter = core::slice::Iter<'a, K>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_macros)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn behaves_like_btreemap() {
        let mut m = VecMap::new();
        let mut b = BTreeMap::new();
        let mut x: u64 = 7;
        for step in 0..2000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let k = format!("k{}", (x >> 33) % 64);
            match step % 4 {
                0 | 1 => assert_eq!(m.insert(k.clone(), step), b.insert(k, step)),
                2 => assert_eq!(m.remove(k.as_str()), b.remove(k.as_str())),
                _ => {
                    *m.get_or_insert_with(k.clone(), || 0) += 1;
                    *b.entry(k).or_insert_with(|| 0) += 1;
                }
            }
            assert_eq!(m.len(), b.len());
            assert!(m.iter().eq(b.iter()));
        }
        assert_eq!(m.get("k1"), b.get("k1"));
        assert_eq!(m.contains_key("k2"), b.contains_key("k2"));
    }

    #[test]
    fn set_keeps_order_and_uniqueness() {
        let mut s = VecSet::new();
        assert!(s.insert(3) && s.insert(1) && !s.insert(3) && s.insert(2));
        assert!(s.iter().copied().eq([1, 2, 3]));
        assert!(s.remove(&2) && !s.remove(&2));
        assert!(!s.is_empty());
    }
}
