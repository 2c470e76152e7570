//! The channel grammar: every bad input of the issue with its exact error, the valid forms and
//! their canonical display, and properties (display∘parse is the identity, nothing panics).

use guts_realtime::{
    Channel, ChannelError, ChannelErrorKind, ChannelType, RealtimeError, RepoFilter, Segment,
};
use proptest::prelude::*;

fn err(input: &str) -> String {
    match Channel::parse(input) {
        Ok(c) => panic!("{input:?} parsed as {c:?}"),
        Err(e @ RealtimeError::InvalidChannel(_)) => e.to_string(),
        Err(e) => panic!("{input:?}: wrong error variant {e:?}"),
    }
}

#[test]
fn bad_inputs_from_the_issue_have_exact_errors() {
    let cases: &[(&str, &str)] = &[
        ("repo:alice", r#"invalid channel: repository channel requires owner/name: "repo:alice""#),
        ("repo:/", r#"invalid channel: owner is empty: "repo:/""#),
        ("repo:alice/", r#"invalid channel: repository name is empty: "repo:alice/""#),
        (
            "repo:a/b/commits",
            r#"invalid channel: unknown repository filter "commits" (expected prs or issues): "repo:a/b/commits""#,
        ),
        ("user:a/b", r#"invalid channel: user name may not contain '/': "user:a/b""#),
        (
            "REPO:a/b",
            r#"invalid channel: unknown channel type "REPO" (expected repo, user or org): "REPO:a/b""#,
        ),
        // spaces
        (
            "repo:a b/c",
            r#"invalid channel: owner contains ' ' (allowed: A-Z a-z 0-9 . _ -): "repo:a b/c""#,
        ),
        (
            "repo:a/b c",
            r#"invalid channel: repository name contains ' ' (allowed: A-Z a-z 0-9 . _ -): "repo:a/b c""#,
        ),
        (
            " repo:a/b",
            r#"invalid channel: unknown channel type " repo" (expected repo, user or org): " repo:a/b""#,
        ),
        (
            "repo:a/b ",
            r#"invalid channel: repository name contains ' ' (allowed: A-Z a-z 0-9 . _ -): "repo:a/b ""#,
        ),
        (
            "user:al ice",
            r#"invalid channel: user name contains ' ' (allowed: A-Z a-z 0-9 . _ -): "user:al ice""#,
        ),
        (
            "org: acme",
            r#"invalid channel: organization name contains ' ' (allowed: A-Z a-z 0-9 . _ -): "org: acme""#,
        ),
        // `.` and `..` segments
        ("repo:./b", r#"invalid channel: owner may not be ".": "repo:./b""#),
        ("repo:../b", r#"invalid channel: owner may not be "..": "repo:../b""#),
        ("repo:a/.", r#"invalid channel: repository name may not be ".": "repo:a/.""#),
        ("repo:a/..", r#"invalid channel: repository name may not be "..": "repo:a/..""#),
        ("user:.", r#"invalid channel: user name may not be ".": "user:.""#),
        ("user:..", r#"invalid channel: user name may not be "..": "user:..""#),
        ("org:.", r#"invalid channel: organization name may not be ".": "org:.""#),
        ("org:..", r#"invalid channel: organization name may not be "..": "org:..""#),
        // empty, no prefix
        ("", r#"invalid channel: missing channel type prefix (repo:, user: or org:): """#),
        (
            "alice/myrepo",
            r#"invalid channel: missing channel type prefix (repo:, user: or org:): "alice/myrepo""#,
        ),
        (
            "invalid",
            r#"invalid channel: missing channel type prefix (repo:, user: or org:): "invalid""#,
        ),
        (":", r#"invalid channel: unknown channel type "" (expected repo, user or org): ":""#),
        (
            "unknown:test",
            r#"invalid channel: unknown channel type "unknown" (expected repo, user or org): "unknown:test""#,
        ),
        ("org:", r#"invalid channel: organization name is empty: "org:""#),
        ("user:", r#"invalid channel: user name is empty: "user:""#),
        ("repo:", r#"invalid channel: repository channel requires owner/name: "repo:""#),
        (
            "repo:onlyname",
            r#"invalid channel: repository channel requires owner/name: "repo:onlyname""#,
        ),
        (
            "repo:a:b/c",
            r#"invalid channel: owner contains ':' (allowed: A-Z a-z 0-9 . _ -): "repo:a:b/c""#,
        ),
        // More structure errors.
        ("repo:a//b", r#"invalid channel: repository name is empty: "repo:a//b""#),
        (
            "repo:a/b/",
            r#"invalid channel: unknown repository filter "" (expected prs or issues): "repo:a/b/""#,
        ),
        (
            "repo:a/b/PRS",
            r#"invalid channel: unknown repository filter "PRS" (expected prs or issues): "repo:a/b/PRS""#,
        ),
        // Item channels: a number without leading zeros that fits a u64, and nothing after it.
        (
            "repo:a/b/prs/x",
            r#"invalid channel: item number must be a decimal number without leading zeros (e.g. prs/42): "repo:a/b/prs/x""#,
        ),
        (
            "repo:a/b/prs/",
            r#"invalid channel: item number must be a decimal number without leading zeros (e.g. prs/42): "repo:a/b/prs/""#,
        ),
        (
            "repo:a/b/prs/01",
            r#"invalid channel: item number must be a decimal number without leading zeros (e.g. prs/42): "repo:a/b/prs/01""#,
        ),
        (
            "repo:a/b/issues/18446744073709551616",
            r#"invalid channel: item number must be a decimal number without leading zeros (e.g. prs/42): "repo:a/b/issues/18446744073709551616""#,
        ),
        (
            "repo:a/b/prs/-1",
            r#"invalid channel: item number must be a decimal number without leading zeros (e.g. prs/42): "repo:a/b/prs/-1""#,
        ),
        (
            "repo:a/b/prs/7/x",
            r#"invalid channel: repository channel has too many segments (expected owner/name[/prs|/issues[/N]]): "repo:a/b/prs/7/x""#,
        ),
        (
            "repo:a/b/x/7",
            r#"invalid channel: unknown repository filter "x" (expected prs or issues): "repo:a/b/x/7""#,
        ),
        ("org:a/b", r#"invalid channel: organization name may not contain '/': "org:a/b""#),
        (
            "repo:é/b",
            r#"invalid channel: owner contains 'é' (allowed: A-Z a-z 0-9 . _ -): "repo:é/b""#,
        ),
        (
            "user:a\nb",
            r#"invalid channel: user name contains '\n' (allowed: A-Z a-z 0-9 . _ -): "user:a\nb""#,
        ),
        (
            "repo:a\"b/c",
            r#"invalid channel: owner contains '"' (allowed: A-Z a-z 0-9 . _ -): "repo:a\"b/c""#,
        ),
    ];
    for (input, want) in cases {
        assert_eq!(err(input), *want, "input {input:?}");
    }
}

#[test]
fn a_300_character_name_is_too_long_and_the_echo_is_truncated() {
    let owner = "a".repeat(300);
    let input = format!("repo:{owner}/x");
    let shown = &input[..120];
    assert_eq!(
        err(&input),
        format!("invalid channel: owner is too long (300 > 100 characters): \"{shown}\"\u{2026}")
    );
    let input = format!("repo:o/{}", "n".repeat(300));
    assert_eq!(
        err(&input),
        format!(
            "invalid channel: repository name is too long (300 > 100 characters): \"{}\"\u{2026}",
            &input[..120]
        )
    );
    let input = format!("user:{}", "u".repeat(300));
    assert_eq!(
        err(&input),
        format!(
            "invalid channel: user name is too long (300 > 100 characters): \"{}\"\u{2026}",
            &input[..120]
        )
    );
    let input = format!("org:{}", "g".repeat(101));
    assert_eq!(
        err(&input),
        format!("invalid channel: organization name is too long (101 > 100 characters): {input:?}")
    );
    // Length is counted in characters, and a huge prefix is cut in the message too.
    let input = format!("{}:x", "p".repeat(300));
    assert_eq!(
        err(&input),
        format!(
            "invalid channel: unknown channel type \"{}\" (expected repo, user or org): \"{}\"\u{2026}",
            "p".repeat(40),
            &input[..120]
        )
    );
    // Exactly 100 is fine.
    let ok = format!("repo:{}/{}", "a".repeat(100), "b".repeat(100));
    assert_eq!(Channel::parse(&ok).unwrap().to_string(), ok);
}

#[test]
fn a_multibyte_input_is_truncated_on_a_character_boundary() {
    let input = format!("user:{}", "é".repeat(150));
    let shown: String = input.chars().take(120).collect();
    assert_eq!(
        err(&input),
        format!(
            "invalid channel: user name is too long (150 > 100 characters): \"{shown}\"\u{2026}"
        )
    );
}

#[test]
fn valid_channels_and_their_canonical_display() {
    let cases: &[(&str, ChannelType, &str, Option<&str>)] = &[
        ("repo:alice/myrepo", ChannelType::Repository, "alice/myrepo", None),
        ("repo:alice/myrepo/prs", ChannelType::Repository, "alice/myrepo", Some("prs")),
        ("repo:alice/myrepo/issues", ChannelType::Repository, "alice/myrepo", Some("issues")),
        ("repo:A-b_c.d/E.f-G_0", ChannelType::Repository, "A-b_c.d/E.f-G_0", None),
        ("repo:.a/..b", ChannelType::Repository, ".a/..b", None),
        ("repo:.../x", ChannelType::Repository, ".../x", None),
        ("repo:o/prs", ChannelType::Repository, "o/prs", None),
        ("repo:o/prs/prs", ChannelType::Repository, "o/prs", Some("prs")),
        ("repo:alice/myrepo/prs/42", ChannelType::Repository, "alice/myrepo", Some("prs/42")),
        ("repo:alice/myrepo/issues/0", ChannelType::Repository, "alice/myrepo", Some("issues/0")),
        (
            "repo:o/n/prs/18446744073709551615",
            ChannelType::Repository,
            "o/n",
            Some("prs/18446744073709551615"),
        ),
        ("user:alice", ChannelType::User, "alice", None),
        ("user:alice.b-c_9", ChannelType::User, "alice.b-c_9", None),
        ("user:x", ChannelType::User, "x", None),
        ("org:guts", ChannelType::Organization, "guts", None),
        ("org:_", ChannelType::Organization, "_", None),
    ];
    for (input, ty, ident, filter) in cases {
        let c = Channel::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(
            c,
            Channel {
                channel_type: *ty,
                identifier: (*ident).into(),
                filter: filter.map(str::to_owned)
            }
        );
        assert_eq!(c.to_string(), *input);
        assert_eq!(input.parse::<Channel>().unwrap(), c);
    }
    let item = Channel::parse("repo:o/n/prs/42").unwrap();
    assert_eq!((item.item(), item.repo_filter()), (Some(42), Some(RepoFilter::Prs)));
    assert_eq!(item.stream().to_string(), "repo:o/n");
    let base = Channel::parse("repo:o/n").unwrap();
    assert_eq!(base.item_channel(RepoFilter::Issues, 3).unwrap().to_string(), "repo:o/n/issues/3");
    assert_eq!(Channel::parse("user:u").unwrap().item_channel(RepoFilter::Prs, 1), None);
    assert_eq!(Channel::repo("o", "n").unwrap().to_string(), "repo:o/n");
    assert_eq!(Channel::user("alice").unwrap().to_string(), "user:alice");
    assert_eq!(Channel::org("acme").unwrap().to_string(), "org:acme");
    assert_eq!(
        Channel::repo("o", "n/x").unwrap_err().to_string(),
        r#"invalid channel: unknown repository filter "x" (expected prs or issues): "repo:o/n/x""#
    );
    assert_eq!(
        Channel::parse("repo:o/n/prs").unwrap().stream(),
        Channel::parse("repo:o/n").unwrap()
    );
}

/// `ChannelError::message` (no `core::fmt`, what the browser SDK throws) says what `Display`
/// says, for every input that Debug-quoting leaves as it is.
fn message_matches_display(input: &str) -> Result<(), TestCaseError> {
    let e: ChannelError = match Channel::try_parse(input) {
        Ok(c) => {
            prop_assert_eq!(Channel::parse(input).unwrap(), c);
            return Ok(());
        }
        Err(e) => e,
    };
    prop_assert_eq!(e.input(), input);
    let displayed = Channel::parse(input).unwrap_err().to_string();
    prop_assert_eq!(format!("invalid channel: {e}"), displayed.clone());
    let quoted_as_is = format!("{input:?}") == format!("\"{input}\"")
        && input.chars().all(|c| format!("{c:?}") == format!("'{c}'"));
    if quoted_as_is {
        prop_assert_eq!(format!("invalid channel: {}", e.message()), displayed);
    }
    Ok(())
}

#[test]
fn try_parse_errors_are_typed_and_their_plain_message_is_the_display_text() {
    let long = format!("repo:{}/x", "é".repeat(150));
    let kinds: &[(&str, ChannelErrorKind)] = &[
        ("nope", ChannelErrorKind::MissingPrefix),
        ("REPO:a/b", ChannelErrorKind::UnknownType),
        ("repo:a", ChannelErrorKind::MissingName),
        ("repo:a/b/prs/7/x", ChannelErrorKind::TooManySegments),
        ("repo:a/b/prs/x", ChannelErrorKind::InvalidNumber),
        ("repo:a/b/issues/007", ChannelErrorKind::InvalidNumber),
        ("repo:a/b/x", ChannelErrorKind::UnknownFilter),
        ("repo:/b", ChannelErrorKind::Empty(Segment::Owner)),
        (&long, ChannelErrorKind::TooLong(Segment::Owner, 150)),
        ("user:a b", ChannelErrorKind::BadChar(Segment::UserName, ' ')),
        ("org:..", ChannelErrorKind::DotSegment(Segment::OrgName, "..")),
        ("org:a/b", ChannelErrorKind::Slash(Segment::OrgName)),
        ("repo:a/.", ChannelErrorKind::DotSegment(Segment::RepoName, ".")),
    ];
    for (input, kind) in kinds {
        assert_eq!(Channel::try_parse(input).unwrap_err().kind(), *kind, "{input:?}");
        message_matches_display(input).unwrap();
    }
    let p300 = format!("{}:x", "p".repeat(300));
    let f300 = format!("repo:a/b/{}", "f".repeat(300));
    for input in ["", ":", "repo:", "repo:a/b/", "repo:a b/c", "repo:é/b", &p300, &f300] {
        message_matches_display(input).unwrap();
    }
    // Quoting differs only where Debug escapes.
    let e = Channel::try_parse("user:a\nb").unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"user name contains '\n' (allowed: A-Z a-z 0-9 . _ -): "user:a\nb""#
    );
    assert_eq!(e.message(), "user name contains '\n' (allowed: A-Z a-z 0-9 . _ -): \"user:a\nb\"");
}

fn segment() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._-]{1,100}".prop_filter("not . or ..", |s| s != "." && s != "..")
}

/// A repository filter: `prs`, `issues`, or one of their items.
fn filter() -> impl Strategy<Value = String> {
    (prop_oneof![Just("prs"), Just("issues")], prop::option::of(any::<u64>())).prop_map(|(f, n)| {
        match n {
            Some(n) => format!("{f}/{n}"),
            None => f.to_owned(),
        }
    })
}

fn valid_channel_string() -> impl Strategy<Value = String> {
    prop_oneof![
        (segment(), segment(), prop::option::of(filter())).prop_map(|(o, n, f)| match f {
            Some(f) => format!("repo:{o}/{n}/{f}"),
            None => format!("repo:{o}/{n}"),
        }),
        segment().prop_map(|u| format!("user:{u}")),
        segment().prop_map(|o| format!("org:{o}")),
    ]
}

fn valid_channel() -> impl Strategy<Value = Channel> {
    prop_oneof![
        (segment(), segment(), prop::option::of(filter())).prop_map(|(o, n, f)| Channel {
            channel_type: ChannelType::Repository,
            identifier: format!("{o}/{n}"),
            filter: f,
        }),
        segment().prop_map(|u| Channel {
            channel_type: ChannelType::User,
            identifier: u,
            filter: None
        }),
        segment().prop_map(|o| Channel {
            channel_type: ChannelType::Organization,
            identifier: o,
            filter: None
        }),
    ]
}

/// Strings close to the grammar (so the fuzzing reaches every branch of the parser).
fn near_channel_string() -> impl Strategy<Value = String> {
    "(repo|user|org|REPO|x|)(:|)[A-Za-z0-9._:/ é-]{0,12}(/prs|/issues|/|)"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn display_of_parse_is_the_identity(s in valid_channel_string()) {
        let c = Channel::parse(&s).unwrap();
        prop_assert_eq!(c.to_string(), s);
    }

    #[test]
    fn parse_of_display_is_the_identity(c in valid_channel()) {
        prop_assert_eq!(Channel::parse(&c.to_string()).unwrap(), c);
    }

    #[test]
    fn arbitrary_strings_never_panic_and_accepted_ones_are_canonical(s in any::<String>()) {
        match Channel::parse(&s) {
            Ok(c) => prop_assert_eq!(c.to_string(), s),
            Err(e) => {
                prop_assert!(matches!(e, RealtimeError::InvalidChannel(_)));
                // The message is bounded whatever the input.
                prop_assert!(e.to_string().chars().count() < 2048);
            }
        }
    }

    #[test]
    fn plain_messages_match_display(s in near_channel_string()) {
        message_matches_display(&s)?;
    }

    #[test]
    fn plain_messages_match_display_on_any_string(s in any::<String>()) {
        message_matches_display(&s)?;
    }

    #[test]
    fn near_misses_never_panic_and_accepted_ones_are_canonical(s in near_channel_string()) {
        match Channel::parse(&s) {
            Ok(c) => {
                prop_assert_eq!(c.to_string(), s.clone());
                prop_assert_eq!(Channel::parse(&c.to_string()).unwrap(), c);
            }
            Err(e) => prop_assert!(e.to_string().starts_with("invalid channel: ")),
        }
    }
}
