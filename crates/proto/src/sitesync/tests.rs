//! Tests of the site-file replication wire format: JSON shapes stay stable, bad input is
//! refused, any byte string is parsed without a panic.

use super::*;
use proptest::prelude::*;

fn hash() -> String {
    "ab".repeat(32)
}

fn file() -> Node {
    Node::File {
        blake3: hash(),
        size: 5,
        mode: 0o644,
        mtime: Mtime {
            secs: 1_700_000_000,
            nanos: 123_456_789,
        },
    }
}

#[test]
fn change_json_shape_is_stable() {
    let c = Change {
        id: "web-1:7".into(),
        path: "wp-content/uploads/a.jpg".into(),
        base: None,
        op: Op::Put { node: file() },
    };
    let text = serde_json::to_string(&c).unwrap();
    assert_eq!(
        text,
        format!(
            r#"{{"id":"web-1:7","path":"wp-content/uploads/a.jpg","base":null,"op":{{"op":"put","node":{{"kind":"file","blake3":"{}","size":5,"mode":420,"mtime":{{"secs":1700000000,"nanos":123456789}}}}}}}}"#,
            hash()
        )
    );
    assert_eq!(parse_change(text.as_bytes()).unwrap(), c);
    let r = Change {
        id: "x".into(),
        path: "a".into(),
        base: Some("dir".into()),
        op: Op::Rename {
            to: "b".into(),
            to_base: None,
        },
    };
    let text = serde_json::to_string(&r).unwrap();
    assert_eq!(
        text,
        r#"{"id":"x","path":"a","base":"dir","op":{"op":"rename","to":"b","to_base":null}}"#
    );
    let o = Outcome::Conflict {
        kept: Some("c1".into()),
        current: Some(Node::Dir { mode: 0o755 }),
    };
    assert_eq!(
        serde_json::to_string(&o).unwrap(),
        r#"{"result":"conflict","kept":"c1","current":{"kind":"dir","mode":493}}"#
    );
}

#[test]
fn bad_changes_are_refused() {
    let ok = Change {
        id: "a".into(),
        path: "x".into(),
        base: None,
        op: Op::Delete,
    };
    assert!(ok.check().is_ok());
    for p in ["../etc/passwd", "/etc/passwd", "a/../../b", "", "a//b"] {
        let c = Change {
            path: p.into(),
            ..ok.clone()
        };
        assert_eq!(c.check(), Err(WireError::Path(p.into())), "{p}");
        let r = Change {
            op: Op::Rename {
                to: p.into(),
                to_base: None,
            },
            ..ok.clone()
        };
        assert_eq!(r.check(), Err(WireError::Path(p.into())), "{p}");
    }
    let into = Change {
        path: "a".into(),
        op: Op::Rename {
            to: "a/b".into(),
            to_base: None,
        },
        ..ok.clone()
    };
    assert_eq!(into.check(), Err(WireError::RenameIntoItself));
    let suid = Change {
        op: Op::Meta {
            mode: 0o4755,
            mtime: None,
        },
        ..ok.clone()
    };
    assert_eq!(suid.check(), Err(WireError::Mode(0o4755)));
    let bad_hash = Change {
        op: Op::Put {
            node: Node::File {
                blake3: "AB".repeat(32),
                size: 1,
                mode: 0o644,
                mtime: Mtime { secs: 0, nanos: 0 },
            },
        },
        ..ok.clone()
    };
    assert_eq!(bad_hash.check(), Err(WireError::Hash));
    let bad_ns = Change {
        op: Op::Meta {
            mode: 0o644,
            mtime: Some(Mtime {
                secs: 0,
                nanos: 1_000_000_000,
            }),
        },
        ..ok.clone()
    };
    assert_eq!(bad_ns.check(), Err(WireError::Mtime));
    let bad_id = Change {
        id: "a/b".into(),
        ..ok
    };
    assert_eq!(bad_id.check(), Err(WireError::Id));
    assert!(matches!(
        parse_change(br#"{"id":"a","path":"x","base":null,"op":{"op":"delete"},"x":1}"#),
        Err(ParseError::Json(_))
    ));
}

#[test]
fn versions_name_content_not_metadata() {
    let mut other = file();
    if let Node::File { mode, .. } = &mut other {
        *mode = 0o600;
    }
    assert_eq!(file().version(), other.version());
    assert_eq!(Node::Dir { mode: 0o700 }.version(), "dir");
    assert_eq!(
        Node::Symlink {
            target: "../x".into()
        }
        .version(),
        "link:../x"
    );
}

proptest! {
    #[test]
    fn parsing_any_bytes_never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_change(&body);
    }

    #[test]
    fn accepted_paths_never_escape(path in "[a-z./]{0,12}") {
        let c = Change { id: "i".into(), path: path.clone(), base: None, op: Op::Delete };
        if c.check().is_ok() {
            prop_assert!(!path.starts_with('/'));
            prop_assert!(path.split('/').all(|p| p != ".." && p != "." && !p.is_empty()));
        }
    }
}

#[test]
fn wait_requests_are_checked() {
    let ok = br#"{"sites":{"a.example":3,"b.example":0},"wait_secs":25}"#;
    let w = parse_wait(ok).unwrap();
    assert_eq!(w.sites.len(), 2);
    assert_eq!(w.sites["a.example"], 3);
    for bad in [
        &br#"{"sites":{"../x":1},"wait_secs":1}"#[..],
        br#"{"sites":{"a/b":1},"wait_secs":1}"#,
        br#"{"sites":{".hidden":1},"wait_secs":1}"#,
        br#"{"sites":{"":1},"wait_secs":1}"#,
        br#"{"sites":{"a":1},"wait_secs":61}"#,
        br#"{"sites":{"a":-1},"wait_secs":1}"#,
        br#"{"sites":{"a":1},"wait_secs":1,"more":1}"#,
        br#"{"sites":[],"wait_secs":1}"#,
        b"not json",
    ] {
        assert!(parse_wait(bad).is_err(), "{}", String::from_utf8_lossy(bad));
    }
    let many: BTreeMap<String, u64> = (0..=MAX_WAIT_SITES).map(|i| (format!("s{i}"), 0)).collect();
    let body = serde_json::to_vec(&WaitRequest {
        sites: many,
        wait_secs: 0,
    })
    .unwrap();
    assert!(matches!(
        parse_wait(&body),
        Err(ParseError::Wire(WireError::TooMany(_)))
    ));
}
