use ssmbak_core::format::ParameterType;

use super::*;

fn fixture(name: &str) -> &'static str {
    match name {
        "create" => include_str!("../../tests/fixtures/create.json"),
        "create_root" => include_str!("../../tests/fixtures/create_root.json"),
        "update_secure" => include_str!("../../tests/fixtures/update_secure.json"),
        "delete" => include_str!("../../tests/fixtures/delete.json"),
        "label" => include_str!("../../tests/fixtures/label.json"),
        "policy_action" => include_str!("../../tests/fixtures/policy_action.json"),
        "cloudtrail_delete" => include_str!("../../tests/fixtures/cloudtrail_delete.json"),
        "cloudtrail_delete_parameters" => {
            include_str!("../../tests/fixtures/cloudtrail_delete_parameters.json")
        }
        other => panic!("no fixture {other}"),
    }
}

fn change(name: &str, operation: Operation, event_time: i64, ty: ParameterType) -> Parsed {
    Parsed::ChangeEvent(ChangeEvent {
        name: name.to_owned(),
        operation,
        event_time,
        param_type: Some(ty),
    })
}

#[test]
fn real_event_shapes() {
    let cases = [
        (
            "create",
            change(
                "/testssmbak/bas/wee",
                Operation::Create,
                1_659_560_971,
                ParameterType::String,
            ),
        ),
        // Root-level names arrive without their slash; the key adds it (format::object_key).
        (
            "create_root",
            change(
                "testyssmbak",
                Operation::Create,
                1_718_309_456,
                ParameterType::String,
            ),
        ),
        (
            "update_secure",
            change(
                "/testssmbak/secret",
                Operation::Update,
                1_659_561_122,
                ParameterType::SecureString,
            ),
        ),
        // No description on deletes.
        (
            "delete",
            change(
                "/testssmbak/bas/wee",
                Operation::Delete,
                1_659_561_408,
                ParameterType::String,
            ),
        ),
        (
            "label",
            change(
                "/testssmbak/bas/wee",
                Operation::Relabel,
                1_659_561_600,
                ParameterType::String,
            ),
        ),
    ];
    for (name, expected) in cases {
        assert_eq!(parse(Some(fixture(name))), Ok(expected), "{name}");
    }
}

#[test]
fn an_operation_this_version_does_not_know_is_skipped() {
    let body = fixture("label").replace("LabelParameterVersion", "SomeFutureOperation");
    assert_eq!(
        parse(Some(&body)),
        Ok(Parsed::Skip {
            name: "/testssmbak/bas/wee".to_owned(),
            operation: "SomeFutureOperation".to_owned(),
        })
    );
}

#[test]
fn an_expiration_is_a_removal_and_notifications_are_skipped() {
    assert_eq!(
        parse(Some(fixture("policy_action"))),
        Ok(change(
            "/testssmbak/bas/wee",
            Operation::Removed,
            1_659_561_900,
            ParameterType::String
        ))
    );
    for policy in ["ExpirationNotification", "NoChangeNotification"] {
        let body = fixture("policy_action").replace("\"Expiration\"", &format!("\"{policy}\""));
        assert_eq!(
            parse(Some(&body)),
            Ok(Parsed::Skip {
                name: "/testssmbak/bas/wee".to_owned(),
                operation: policy.to_owned()
            })
        );
    }
}

fn deleters(names: &[&str], event_time: i64, by: &str) -> Parsed {
    Parsed::Deleters(
        names
            .iter()
            .map(|n| DeleterEvent {
                name: (*n).to_owned(),
                event_time,
                deleted_by: by.to_owned(),
            })
            .collect(),
    )
}

#[test]
fn cloudtrail_deletes_name_the_caller_of_each_deleted_parameter() {
    // The call's own time (detail.eventTime), not EventBridge's.
    assert_eq!(
        parse(Some(fixture("cloudtrail_delete"))),
        Ok(deleters(
            &["/testssmbak/bas/wee"],
            1_659_561_407,
            "arn:aws:sts::123456789012:assumed-role/Admin/alice@example.com"
        ))
    );
    // Only what the call deleted: `/testssmbak/never` was an invalid parameter.
    let bob = "arn:aws:iam::123456789012:user/ops/bob";
    assert_eq!(
        parse(Some(fixture("cloudtrail_delete_parameters"))),
        Ok(deleters(
            &["/testssmbak/a", "/testssmbak/b"],
            1_659_561_604,
            bob
        ))
    );
    // Without a response, what was asked (the backup then records nothing SSM still has).
    let no_response = fixture("cloudtrail_delete_parameters").replace(
        r#""responseElements":{"deletedParameters":["/testssmbak/a","/testssmbak/b"],"invalidParameters":["/testssmbak/never"]}"#,
        r#""responseElements":null"#,
    );
    assert_eq!(
        parse(Some(&no_response)),
        Ok(deleters(
            &["/testssmbak/a", "/testssmbak/b", "/testssmbak/never"],
            1_659_561_604,
            bob
        ))
    );
    // Root-level names keep the caller's spelling; the key adds the slash.
    let root = fixture("cloudtrail_delete").replace("/testssmbak/bas/wee", "rootparam");
    let Ok(Parsed::Deleters(d)) = parse(Some(&root)) else {
        panic!("parses");
    };
    assert_eq!(d[0].name, "rootparam");
}

#[test]
fn cloudtrail_records_with_nothing_to_record_are_skipped() {
    let ok = fixture("cloudtrail_delete");
    let failed = ok.replace(
        r#""responseElements":null"#,
        r#""responseElements":null,"errorCode":"ParameterNotFound","errorMessage":"Parameter /testssmbak/bas/wee not found.""#,
    );
    let no_arn = ok.replace(
        r#""arn":"arn:aws:sts::123456789012:assumed-role/Admin/alice@example.com","#,
        "",
    );
    let other_call = ok.replace(r#""DeleteParameter""#, r#""PutParameter""#);
    for (what, body) in [
        ("failed call", failed),
        ("no caller ARN", no_arn),
        ("another call", other_call),
    ] {
        assert!(
            matches!(parse(Some(&body)), Ok(Parsed::Skip { ref name, .. }) if name == "/testssmbak/bas/wee"),
            "{what}: {:?}",
            parse(Some(&body))
        );
    }
}

#[test]
fn malformed_cloudtrail_records_are_errors() {
    let ok = fixture("cloudtrail_delete");
    let cases: Vec<(&str, String, EventError)> = vec![
        (
            "another service's call",
            ok.replace(
                r#""eventSource":"ssm.amazonaws.com""#,
                r#""eventSource":"s3.amazonaws.com""#,
            ),
            EventError::NotParameterChange {
                event_source: Some("s3.amazonaws.com".to_owned()),
                detail_type: Some(CLOUDTRAIL_DETAIL_TYPE.to_owned()),
            },
        ),
        (
            "no name",
            ok.replace(
                r#""requestParameters":{"name":"/testssmbak/bas/wee"}"#,
                r#""requestParameters":{}"#,
            ),
            EventError::Missing("detail.requestParameters.name"),
        ),
        (
            "bad time",
            ok.replace("2022-08-03T21:16:47Z", "yesterday"),
            EventError::BadTime("yesterday".to_owned()),
        ),
    ];
    for (what, body, expected) in cases {
        assert_eq!(parse(Some(&body)), Err(expected), "{what}");
    }
}

#[test]
fn other_detail_types_are_errors() {
    let other = fixture("policy_action").replace(
        "Parameter Store Policy Action",
        "EC2 Instance State-change Notification",
    );
    assert_eq!(
        parse(Some(&other)),
        Err(EventError::NotParameterChange {
            event_source: Some("aws.ssm".to_owned()),
            detail_type: Some("EC2 Instance State-change Notification".to_owned()),
        })
    );
}

#[test]
fn malformed_bodies() {
    let ok = fixture("create");
    let without = |field: &str| {
        let mut v: serde_json::Value = serde_json::from_str(ok).expect("fixture is JSON");
        if let Some(rest) = field.strip_prefix("detail.") {
            v["detail"].as_object_mut().map(|d| d.remove(rest));
        } else {
            v.as_object_mut().map(|o| o.remove(field));
        }
        v.to_string()
    };
    let with_time = |t: &str| ok.replace("2022-08-03T21:09:31Z", t);
    let cases: Vec<(&str, Option<String>, fn(&EventError) -> bool)> = vec![
        ("no body", None, |e| *e == EventError::NoBody),
        ("empty", Some(String::new()), |e| {
            matches!(e, EventError::NotJson(_))
        }),
        ("not JSON", Some("hello".into()), |e| {
            matches!(e, EventError::NotJson(_))
        }),
        ("JSON array", Some("[1,2]".into()), |e| {
            matches!(e, EventError::NotJson(_))
        }),
        (
            "wrong field type",
            Some(ok.replace("\"time\":\"2022-08-03T21:09:31Z\"", "\"time\":5")),
            |e| matches!(e, EventError::NotJson(_)),
        ),
        ("no source", Some(without("source")), |e| {
            matches!(e, EventError::NotParameterChange { .. })
        }),
        ("no detail", Some(without("detail")), |e| {
            *e == EventError::Missing("detail")
        }),
        ("no name", Some(without("detail.name")), |e| {
            *e == EventError::Missing("detail.name")
        }),
        ("no operation", Some(without("detail.operation")), |e| {
            *e == EventError::Missing("detail.operation")
        }),
        ("no time", Some(without("time")), |e| {
            *e == EventError::Missing("time")
        }),
        ("bad time", Some(with_time("yesterday")), |e| {
            matches!(e, EventError::BadTime(_))
        }),
        ("date only", Some(with_time("2022-08-03")), |e| {
            matches!(e, EventError::BadTime(_))
        }),
    ];
    for (what, body, is_expected) in cases {
        let got = parse(body.as_deref());
        assert!(got.as_ref().is_err_and(is_expected), "{what}: {got:?}");
    }
}

#[test]
fn times_with_fractions_and_offsets_truncate_to_the_second() {
    let ok = fixture("create");
    for (t, expected) in [
        ("2022-08-03T21:09:31.999Z", 1_659_560_971),
        ("2022-08-03T23:09:31+02:00", 1_659_560_971),
    ] {
        let Ok(Parsed::ChangeEvent(c)) = parse(Some(&ok.replace("2022-08-03T21:09:31Z", t))) else {
            panic!("{t} should parse");
        };
        assert_eq!(c.event_time, expected, "{t}");
    }
}

#[test]
fn unknown_type_names_do_not_stop_a_backup() {
    let body = fixture("create").replace("\"type\":\"String\"", "\"type\":\"Mystery\"");
    let Ok(Parsed::ChangeEvent(c)) = parse(Some(&body)) else {
        panic!("should parse");
    };
    assert_eq!(c.param_type, None);
}

proptest::proptest! {
    /// No input makes the parser panic.
    #[test]
    fn never_panics(body in "\\PC{0,300}") {
        let _ = parse(Some(&body));
    }
}
