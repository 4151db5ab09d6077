use super::*;
use crate::format::Attributes;

fn snap(name: &str, value: &str) -> ParameterSnapshot {
    ParameterSnapshot {
        attributes: Attributes {
            description: Some("fancy description".to_owned()),
            version: Some(1),
            last_modified_ms: Some(0),
            tier: Some("Standard".to_owned()),
            data_type: Some("text".to_owned()),
            ..Attributes::default()
        },
        ..ParameterSnapshot::new(name, value, ParameterType::String)
    }
}

/// What SSM holds now: as a backup would record it, at a later version.
fn current(name: &str, value: &str) -> ParameterSnapshot {
    let mut now = snap(name, value);
    now.attributes.version = Some(7);
    now.attributes.last_modified_ms = None;
    now
}

fn present(s: ParameterSnapshot) -> BackupState {
    present_at(100, s)
}

fn present_at(at: i64, snapshot: ParameterSnapshot) -> BackupState {
    BackupState::Present { at, snapshot }
}

/// `name:action` for every change, sorted.
fn summary(p: &Plan) -> Vec<String> {
    p.changes
        .iter()
        .map(|c| format!("{}:{}", c.name, c.action.as_str()))
        .collect()
}

#[test]
fn the_original_rules_table() {
    // (what, backup state, SSM now, expected action)
    let cases: Vec<(
        &str,
        Option<BackupState>,
        Option<ParameterSnapshot>,
        Option<&str>,
    )> = vec![
        (
            "existed then, absent now: create",
            Some(present(snap("/a", "v"))),
            None,
            Some("create"),
        ),
        (
            "identical: nothing",
            Some(present(snap("/a", "v"))),
            Some(current("/a", "v")),
            None,
        ),
        (
            "value differs: update",
            Some(present(snap("/a", "v"))),
            Some(current("/a", "w")),
            Some("update"),
        ),
        (
            "whitespace is a difference",
            Some(present(snap("/a", " v "))),
            Some(current("/a", "v")),
            Some("update"),
        ),
        (
            "type differs: update",
            Some(present(snap("/a", "v"))),
            Some(ParameterSnapshot {
                param_type: ParameterType::StringList,
                ..current("/a", "v")
            }),
            Some("update"),
        ),
        (
            "description differs: update",
            Some(present(snap("/a", "v"))),
            Some({
                let mut c = current("/a", "v");
                c.attributes.description = None;
                c
            }),
            Some("update"),
        ),
        (
            "deleted then, present now: delete",
            Some(BackupState::Deleted { at: 5 }),
            Some(current("/a", "v")),
            Some("delete"),
        ),
        (
            "deleted then, absent now: nothing",
            Some(BackupState::Deleted { at: 5 }),
            None,
            None,
        ),
        (
            "tracked, no version yet, present: delete",
            Some(BackupState::NoVersion),
            Some(current("/a", "v")),
            Some("delete"),
        ),
        (
            "tracked, no version yet, absent: nothing",
            Some(BackupState::NoVersion),
            None,
            None,
        ),
        (
            "untracked: left alone",
            None,
            Some(current("/a", "v")),
            None,
        ),
        (
            "not an ssmbak object: left alone",
            Some(BackupState::Foreign { at: 5 }),
            Some(current("/a", "v")),
            None,
        ),
    ];
    for (what, backup, now, expected) in cases {
        let backups: BTreeMap<String, BackupState> =
            backup.into_iter().map(|b| ("/a".to_owned(), b)).collect();
        let current: BTreeMap<String, ParameterSnapshot> =
            now.into_iter().map(|c| ("/a".to_owned(), c)).collect();
        let p = plan(&backups, &current);
        assert_eq!(
            p.changes.first().map(|c| c.action.as_str()),
            expected,
            "{what}"
        );
    }
}

#[test]
fn original_format_descriptions_compare_sanitised() {
    let mut s = snap("/a", "v");
    s.attributes.description = Some("ssmbak bucket auto-discovered".to_owned());
    s.attributes.unknown = vec![Attribute::Description, Attribute::Tier, Attribute::DataType];
    let mut c = current("/a", "v");
    c.attributes.description = Some("ssmbak bucket (auto-discovered)".to_owned());
    c.attributes.tier = Some("Advanced".to_owned());
    assert_eq!(
        differences(&s, &c),
        Vec::<&str>::new(),
        "sanitised forms match; tier unknown"
    );
    c.attributes.description = Some("another text".to_owned());
    assert_eq!(differences(&s, &c), vec!["description"]);
}

#[test]
fn recorded_metadata_is_compared() {
    let mut s = snap("/a", "v");
    s.attributes.key_id = Some("alias/app".to_owned());
    let c = current("/a", "v");
    assert_eq!(differences(&s, &c), vec!["key id"]);
    let mut c2 = current("/a", "v");
    c2.attributes.tier = Some("Advanced".to_owned());
    assert_eq!(differences(&snap("/a", "v"), &c2), vec!["tier"]);
}

#[test]
fn changes_are_sorted_and_unchanged_counted() {
    let backups: BTreeMap<String, BackupState> = [
        ("/z", present(snap("/z", "v"))),
        ("/a", present(snap("/a", "v"))),
        ("/m", present(snap("/m", "same"))),
        ("/d", BackupState::Deleted { at: 1 }),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let current: BTreeMap<String, ParameterSnapshot> = [
        current("/m", "same"),
        current("/d", "x"),
        current("/z", "old"),
    ]
    .into_iter()
    .map(|c| (c.name.clone(), c))
    .collect();
    let p = plan(&backups, &current);
    assert_eq!(summary(&p), ["/a:create", "/d:delete", "/z:update"]);
    assert_eq!(p.unchanged, 1);
}

/// What SSM will not do is planned around, or refused before anything is written.
#[test]
fn writes_fit_what_ssm_accepts() {
    let advanced = |mut c: ParameterSnapshot| {
        c.attributes.tier = Some("Advanced".to_owned());
        c
    };
    let big = "x".repeat(STANDARD_VALUE_MAX + 1);
    let too_big = "x".repeat(ADVANCED_VALUE_MAX + 1);
    let with_policies = |mut s: ParameterSnapshot| {
        s.attributes.policies = Some(r#"[{"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":"2030-01-01T00:00:00Z"}}]"#.to_owned());
        s
    };
    let with_key = |mut s: ParameterSnapshot| {
        s.attributes.key_id = Some("alias/app".to_owned());
        s
    };
    // (what, backup, SSM now, action, tier written, notes, refused)
    let cases: Vec<(
        &str,
        ParameterSnapshot,
        Option<ParameterSnapshot>,
        Option<&str>,
        Option<&str>,
        Vec<&str>,
        Option<&str>,
    )> = vec![
        (
            "Standard backup over an Advanced parameter, same value: nothing to do, ever",
            snap("/a", "v"),
            Some(advanced(current("/a", "v"))),
            None,
            None,
            vec![],
            None,
        ),
        (
            "Standard backup over an Advanced parameter, other value: stays Advanced",
            snap("/a", "old"),
            Some(advanced(current("/a", "new"))),
            Some("update"),
            Some("Advanced"),
            vec![NOTE_STAYS_ADVANCED],
            None,
        ),
        (
            "a value over 4 KB needs Advanced",
            snap("/a", &big),
            None,
            Some("create"),
            Some("Advanced"),
            vec![NOTE_LARGE_VALUE],
            None,
        ),
        (
            "policies need Advanced",
            with_policies(snap("/a", "v")),
            None,
            Some("create"),
            Some("Advanced"),
            vec![NOTE_POLICIES],
            None,
        ),
        (
            "a KMS key only goes with a SecureString",
            with_key(snap("/a", "v")),
            None,
            Some("create"),
            Some("Standard"),
            vec![NOTE_KEY_ID],
            None,
        ),
        (
            "no tier holds 8 KB: reported, never sent",
            snap("/a", &too_big),
            None,
            Some("create"),
            Some("Advanced"),
            vec![NOTE_LARGE_VALUE],
            Some(REFUSED_TOO_LARGE),
        ),
    ];
    for (what, backup, now, action, tier, notes, refused) in cases {
        let backups = BTreeMap::from([("/a".to_owned(), present(backup))]);
        let current: BTreeMap<String, ParameterSnapshot> =
            now.into_iter().map(|c| (c.name.clone(), c)).collect();
        let p = plan(&backups, &current);
        let change = p.changes.first();
        assert_eq!(change.map(|c| c.action.as_str()), action, "{what}");
        if let Some(c) = change {
            let t = c.target.as_ref();
            assert_eq!(t.and_then(|t| t.attributes.tier.as_deref()), tier, "{what}");
            assert_eq!(c.notes, notes, "{what}");
            assert_eq!(c.refused, refused, "{what}");
            assert!(t.is_some_and(|t| t.attributes.key_id.is_none()), "{what}");
        }
    }
}

#[test]
fn data_types_ssm_will_not_change_in_place_are_replaced() {
    let current = |data_type: Option<&str>| {
        let mut now = ParameterSnapshot::new("/p", "v", ParameterType::String);
        now.attributes.data_type = data_type.map(str::to_owned);
        now
    };
    let target = |data_type: Option<&str>| {
        let mut s = ParameterSnapshot::new("/p", "v", ParameterType::String);
        s.attributes.data_type = data_type.map(str::to_owned);
        s
    };
    for (wanted, now, replaced) in [
        (Some("text"), Some("aws:ec2:image"), true),
        (Some("aws:ec2:image"), None, true),
        (Some("aws:ssm:integration"), Some("text"), true),
        (Some("aws:ec2:image"), Some("aws:ec2:image"), false),
        // Other data types change in place.
        (Some("text"), None, false),
        // A backup that recorded none says nothing.
        (None, Some("aws:ec2:image"), false),
    ] {
        assert_eq!(
            needs_replacement(&target(wanted), &current(now)),
            replaced,
            "{wanted:?} over {now:?}"
        );
    }
}

fn tag_map(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn a_tag_edit_adds_what_is_missing_removes_what_is_extra_and_never_touches_aws_tags() {
    let wanted = tag_map(&[("team", "core"), ("env", "prod"), ("aws:x", "1")]);
    let now = tag_map(&[
        ("team", "web"),
        ("owner", "x"),
        ("aws:cloudformation:stack-name", "s"),
    ]);
    let edit = TagEdit::between(&wanted, &now);
    assert_eq!(edit.add, tag_map(&[("env", "prod"), ("team", "core")]));
    assert_eq!(edit.remove, ["owner"]);
    assert_eq!(edit.to_string(), "+env=prod, +team=core, -owner");
    assert!(TagEdit::between(&now, &now).is_empty());
    assert!(!user_tag("AWS:Foo") && user_tag("awsome"));
}

#[test]
fn tags_alone_differing_update_without_a_new_version() {
    let with_tags = |s: ParameterSnapshot, pairs: &[(&str, &str)]| {
        s.with_attributes(|a| a.tags = Some(tag_map(pairs)))
    };
    let backup = with_tags(snap("/a", "v"), &[("team", "core")]);
    // (what, SSM now, expected differs, writes a version, tags to add)
    let cases = [
        (
            "tags only",
            Some(with_tags(current("/a", "v"), &[("team", "web")])),
            vec!["tags"],
            false,
            1,
        ),
        (
            "value and tags",
            Some(with_tags(current("/a", "w"), &[])),
            vec!["value", "tags"],
            true,
            1,
        ),
        (
            "tags unknown now",
            Some(current("/a", "w")),
            vec!["value"],
            true,
            0,
        ),
        ("created: every tag", None, vec![], true, 1),
    ];
    for (what, now, differs, writes, added) in cases {
        let backups = BTreeMap::from([("/a".to_owned(), present(backup.clone()))]);
        let current: BTreeMap<String, ParameterSnapshot> =
            now.into_iter().map(|c| ("/a".to_owned(), c)).collect();
        let plan = plan(&backups, &current);
        let c = &plan.changes[0];
        assert_eq!(c.differs, differs, "{what}");
        assert_eq!(c.writes_value(), writes, "{what}");
        assert_eq!(c.tags.add.len(), added, "{what}");
    }
    // The same tags: nothing to do.
    let same = BTreeMap::from([(
        "/a".to_owned(),
        with_tags(current("/a", "v"), &[("team", "core")]),
    )]);
    let backups = BTreeMap::from([("/a".to_owned(), present(backup))]);
    assert!(plan(&backups, &same).changes.is_empty());
}

#[test]
fn a_parameter_is_unchanged_since_its_backup_only_when_its_version_proves_it() {
    let at = 1_700_000_000_i64;
    let ms = |s: i64| Some(s * 1000 + 123);
    let ours = |version: i64, modified: Option<i64>| {
        present_at(
            at,
            snap("/a", "v").with_attributes(|a| {
                a.version = Some(version);
                a.last_modified_ms = modified;
            }),
        )
    };
    let originals = present_at(
        at,
        snap("/a", "v").with_attributes(|a| {
            a.version = None;
            a.last_modified_ms = None;
        }),
    );
    let now = |version: i64, modified: Option<i64>| {
        current("/a", "v").with_attributes(|a| {
            a.version = Some(version);
            a.last_modified_ms = modified;
        })
    };
    // (what, backup at T, SSM now, same parameters, unchanged)
    let cases = [
        (
            "same version, same date",
            ours(3, ms(at - 5)),
            now(3, ms(at - 5)),
            true,
            true,
        ),
        (
            "a later version",
            ours(3, ms(at - 5)),
            now(4, ms(at + 5)),
            true,
            false,
        ),
        (
            "re-created: v3 again, another date",
            ours(3, ms(at - 5)),
            now(3, ms(at + 9)),
            true,
            false,
        ),
        (
            "no date recorded",
            ours(3, None),
            now(3, ms(at - 5)),
            true,
            false,
        ),
        (
            "elsewhere, --to or --key-id",
            ours(3, ms(at - 5)),
            now(3, ms(at - 5)),
            false,
            false,
        ),
        (
            "original's: modified a second before",
            originals.clone(),
            now(9, ms(at - 1)),
            true,
            true,
        ),
        (
            "original's: modified in the event's second",
            originals.clone(),
            now(9, ms(at)),
            true,
            false,
        ),
        (
            "original's: modified after",
            originals.clone(),
            now(9, ms(at + 1)),
            true,
            false,
        ),
        ("original's: no date", originals, now(9, None), true, false),
        (
            "deleted at T",
            BackupState::Deleted { at },
            now(3, ms(at - 5)),
            true,
            false,
        ),
        (
            "no version at T",
            BackupState::NoVersion,
            now(3, ms(at - 5)),
            true,
            false,
        ),
    ];
    for (what, state, now, same, expected) in cases {
        assert_eq!(unchanged_since(&state, &now, same), expected, "{what}");
    }
}

#[test]
fn an_unchanged_parameter_takes_the_backups_record_and_plans_nothing() {
    let backup = snap("/a", "v").with_attributes(|a| {
        a.key_id = Some("alias/k".to_owned());
        a.allowed_pattern = Some(".*".to_owned());
        a.policies = Some("[]".to_owned());
    });
    // What GetParametersByPath says: no description, KeyId, tier, pattern or policies.
    let mut now = ParameterSnapshot::new("/a", "v", ParameterType::String).with_attributes(|a| {
        a.version = backup.attributes.version;
        a.last_modified_ms = backup.attributes.last_modified_ms;
    });
    adopt_recorded(&mut now, &backup);
    let backups = BTreeMap::from([("/a".to_owned(), present(backup))]);
    let current = BTreeMap::from([("/a".to_owned(), now)]);
    let plan = plan(&backups, &current);
    assert!(plan.changes.is_empty(), "{plan:?}");
    assert_eq!(plan.unchanged, 1);
}
