use super::*;

fn snap(name: &str, value: &str) -> ParameterSnapshot {
    ParameterSnapshot {
        description: Some("fancy description".to_owned()),
        version: Some(1),
        last_modified_ms: Some(0),
        tier: Some("Standard".to_owned()),
        data_type: Some("text".to_owned()),
        ..ParameterSnapshot::new(name, value, ParameterType::String)
    }
}

fn current(name: &str, value: &str) -> CurrentParam {
    CurrentParam {
        name: name.to_owned(),
        value: value.to_owned(),
        param_type: ParameterType::String,
        version: 7,
        description: Some("fancy description".to_owned()),
        key_id: None,
        tier: Some("Standard".to_owned()),
        data_type: Some("text".to_owned()),
        allowed_pattern: None,
        policies: None,
    }
}

fn present(s: ParameterSnapshot) -> BackupState {
    BackupState::Present {
        at: 100,
        snapshot: s,
    }
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
        Option<CurrentParam>,
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
            Some(CurrentParam {
                param_type: ParameterType::StringList,
                ..current("/a", "v")
            }),
            Some("update"),
        ),
        (
            "description differs: update",
            Some(present(snap("/a", "v"))),
            Some(CurrentParam {
                description: None,
                ..current("/a", "v")
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
        let current: BTreeMap<String, CurrentParam> =
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
    s.description = Some("ssmbak bucket auto-discovered".to_owned());
    s.omitted = vec![
        meta::DESCRIPTION.to_owned(),
        meta::TIER.to_owned(),
        meta::DATA_TYPE.to_owned(),
    ];
    let mut c = current("/a", "v");
    c.description = Some("ssmbak bucket (auto-discovered)".to_owned());
    c.tier = Some("Advanced".to_owned());
    assert_eq!(
        differences(&s, &c),
        Vec::<&str>::new(),
        "sanitised forms match; tier unknown"
    );
    c.description = Some("another text".to_owned());
    assert_eq!(differences(&s, &c), vec!["description"]);
}

#[test]
fn recorded_metadata_is_compared() {
    let mut s = snap("/a", "v");
    s.key_id = Some("alias/app".to_owned());
    let c = current("/a", "v");
    assert_eq!(differences(&s, &c), vec!["key id"]);
    let mut c2 = current("/a", "v");
    c2.tier = Some("Advanced".to_owned());
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
    let current: BTreeMap<String, CurrentParam> = [
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
