//! Routing: which subscriptions receive an event, and how many copies.

use super::{check, still_open};
use crate::conn::{Conn, Fail};
use crate::hooks::{publish, uniq};
use crate::Target;
use serde_json::json;

pub(super) async fn routing_matrix(t: &Target) -> Result<(), Fail> {
    let base = format!("repo:{}/r", uniq("route"));
    let prs = format!("{base}/prs");
    let issues = format!("{base}/issues");
    let mut cb = Conn::open(t).await?;
    let mut cp = Conn::open(t).await?;
    let mut ci = Conn::open(t).await?;
    cb.subscribe(&base).await?;
    cp.subscribe(&prs).await?;
    ci.subscribe(&issues).await?;
    // (emit channel, kind) → which of base / prs / issues receive it.
    let cases = [
        (&base, "push", [true, false, false]),
        (&base, "pr_opened", [true, true, false]),
        (&base, "issue_opened", [true, false, true]),
        (&prs, "pr_merged", [true, true, false]),
        (&issues, "issue_closed", [true, false, true]),
        (&prs, "push", [true, true, false]),
    ];
    let mut expected: [Vec<u64>; 3] = Default::default();
    for (ch, kind, who) in cases {
        let seq = publish(t, ch, kind, json!({})).await?;
        for (i, gets) in who.iter().enumerate() {
            if *gets {
                expected[i].push(seq);
            }
        }
    }
    for (i, c) in [&mut cb, &mut cp, &mut ci].into_iter().enumerate() {
        let mut got = Vec::new();
        for _ in 0..expected[i].len() {
            got.push(c.recv().await?["seq"].as_u64().unwrap_or(0));
        }
        still_open(c).await.map_err(|e| format!("subscriber {i} got an extra event: {e}"))?;
        check(got == expected[i], || {
            format!("subscriber {i}: expected seqs {:?}, got {got:?}", expected[i])
        })?;
    }
    Ok(())
}

pub(super) async fn one_copy_through_two_channels(t: &Target) -> Result<(), Fail> {
    let base = format!("repo:{}/two", uniq("o"));
    let mut c = Conn::open(t).await?;
    c.subscribe(&base).await?;
    c.subscribe(&format!("{base}/prs")).await?;
    let seq = publish(t, &base, "pr_opened", json!({})).await?;
    let e = c.recv().await?;
    check(e["seq"] == seq, || format!("got {e}"))?;
    still_open(&mut c).await.map_err(|e| format!("a second copy arrived: {e}"))
}

pub(super) async fn item_channels(t: &Target) -> Result<(), Fail> {
    let base = format!("repo:{}/items", uniq("o"));
    let chans = [format!("{base}/prs/7"), format!("{base}/prs/8"), format!("{base}/issues/7")];
    let mut conns = Vec::new();
    for ch in &chans {
        let mut c = Conn::open(t).await?;
        c.subscribe(ch).await?;
        conns.push(c);
    }
    // (publish on, kind, data) → which of prs/7, prs/8, issues/7 receive it.
    let cases = [
        (base.clone(), "pr_opened", json!({"number": 7}), [true, false, false]),
        (format!("{base}/prs/7"), "push", json!({}), [true, false, false]),
        (base.clone(), "pr_review", json!({"pr_number": 8}), [false, true, false]),
        (base.clone(), "issue_opened", json!({"number": 7}), [false, false, true]),
        (
            format!("{base}/issues"),
            "issue_comment",
            json!({"parent_number": 7}),
            [false, false, true],
        ),
        (base.clone(), "push", json!({"number": 7}), [false, false, false]),
    ];
    let mut expected: [Vec<u64>; 3] = Default::default();
    for (ch, kind, data, who) in cases {
        let seq = publish(t, &ch, kind, data).await?;
        for (i, gets) in who.iter().enumerate() {
            if *gets {
                expected[i].push(seq);
            }
        }
    }
    for (i, c) in conns.iter_mut().enumerate() {
        let mut got = Vec::new();
        for _ in 0..expected[i].len() {
            got.push(c.recv().await?["seq"].as_u64().unwrap_or(0));
        }
        still_open(c).await.map_err(|e| format!("{} got an extra event: {e}", chans[i]))?;
        check(got == expected[i], || {
            format!("{}: expected seqs {:?}, got {got:?}", chans[i], expected[i])
        })?;
    }
    Ok(())
}
