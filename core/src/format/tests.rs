use super::extras::{metadata_size, METADATA_LIMIT};

use proptest::prelude::*;

use super::*;

fn snapshot(name: &str, value: &str) -> ParameterSnapshot {
    ParameterSnapshot {
        attributes: Attributes {
            version: Some(3),
            last_modified_ms: Some(1_718_309_456_123),
            tier: Some("Standard".to_owned()),
            data_type: Some("text".to_owned()),
            ..Attributes::default()
        },
        ..ParameterSnapshot::new(name, value, ParameterType::String)
    }
}

fn read_back(obj: &EncodedObject) -> StoredFields {
    let tags = decode_tagging(&obj.tagging);
    StoredFields::read(
        tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        obj.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )
    .expect("our own encoding reads back")
}

#[test]
fn object_key_has_one_leading_slash() {
    for (name, key) in [
        ("testyssmbak", "/testyssmbak"),
        ("/testyssmbak", "/testyssmbak"),
        ("/a/b/c", "/a/b/c"),
        ("a.b-c_d", "/a.b-c_d"),
    ] {
        assert_eq!(object_key(name), key, "{name}");
    }
}

#[test]
fn sanitize_description_as_the_original() {
    // The original's own test cases, and the moto-verified one.
    for (input, expected) in [
        (
            "ssmbak bucket (auto-discovered)",
            "ssmbak bucket auto-discovered",
        ),
        ("test + value = good_result", "test + value = good_result"),
        ("fancy (desc) é!", "fancy desc "),
        ("a@b.c:d/e", "a@b.c:d/e"),
        ("", ""),
    ] {
        assert_eq!(sanitize_description(input), expected, "{input:?}");
    }
    assert_eq!(sanitize_description(&"a".repeat(300)), "a".repeat(256));
}

#[test]
fn tags_keep_the_original_names_order_and_encoding() {
    let mut s = snapshot("/app/db", "v");
    s.attributes.description = Some("fancy description".to_owned());
    let record = BackupRecord::Value {
        event_time: 1_718_309_456,
        snapshot: s,
    };
    let obj = record.encode();
    assert_eq!(obj.key, "/app/db");
    assert_eq!(
        obj.tagging,
        "ssmbakTime=1718309456&ssmbakType=String&ssmbakDescription=fancy%20description&ssmbakVersion=3"
    );
}

#[test]
fn body_is_the_raw_value() {
    for value in ["  padded  ", "a,b,c", "line1\nline2\n", "ünïcødé", "x"] {
        let obj = BackupRecord::Value {
            event_time: 1,
            snapshot: snapshot("/k", value),
        }
        .encode();
        assert_eq!(obj.body, value.as_bytes());
    }
}

#[test]
fn original_objects_read_back() {
    // Exactly what the original's Lambda writes (tags only, `+` already decoded by S3).
    let f = StoredFields::read(
        [
            ("ssmbakTime", "1718309456"),
            ("ssmbakType", "SecureString"),
            ("ssmbakDescription", "fancy description"),
        ],
        [],
    )
    .expect("reads");
    assert_eq!(f.event_time, Some(1_718_309_456));
    assert_eq!(f.param_type, Some(ParameterType::SecureString));
    assert_eq!(
        f.attributes.description.as_deref(),
        Some("fancy description")
    );
    assert!(!f.is_tombstone());
    let snap = f
        .snapshot("/k", b"  v  ".to_vec())
        .expect("a value version");
    assert_eq!(snap.value, "  v  ");
    assert_eq!(snap.attributes.version, None);
    assert!(
        !snap.attributes.knows(Attribute::Description),
        "only the sanitised form is known"
    );
}

#[test]
fn unreadable_fields_are_errors_not_guesses() {
    assert!(StoredFields::read([("ssmbakTime", "soon")], []).is_err());
    assert!(StoredFields::read([("ssmbakType", "Integer")], []).is_err());
    assert!(StoredFields::read([], [("ssmbak-version", "x")]).is_err());
}

#[test]
fn plain_etag_is_the_quoted_md5_s3_lists() {
    assert_eq!(plain_etag(b""), "\"d41d8cd98f00b204e9800998ecf8427e\"");
    assert_eq!(plain_etag(b"hello"), "\"5d41402abc4b2a76b9719d911017c592\"");
}

#[test]
fn our_objects_are_known_by_their_tags_the_originals_are_not() {
    let tags_of = |record: &BackupRecord| decode_tagging(&record.encode().tagging);
    let pairs = |tags: &[(String, String)]| -> bool {
        tagged_by_us(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    };
    let value = BackupRecord::Value {
        event_time: 1,
        snapshot: snapshot("/a", "v"),
    };
    let tombstone = BackupRecord::Tombstone {
        name: "/a".into(),
        event_time: 2,
        param_type: None,
        deleted_by: None,
    };
    assert!(pairs(&tags_of(&value)));
    assert!(pairs(&tags_of(&tombstone)));
    let original = decode_tagging("ssmbakTime=1&ssmbakType=String&ssmbakDescription=d");
    assert!(!pairs(&original));
}

#[test]
fn tombstone_has_no_original_tags() {
    let obj = BackupRecord::Tombstone {
        name: "gone".to_owned(),
        event_time: 1_700_000_000,
        param_type: Some(ParameterType::String),
        deleted_by: None,
    }
    .encode();
    assert_eq!(obj.key, "/gone");
    assert!(obj.body.is_empty());
    // No ssmbakTime: the original takes it at its LastModified, just before the marker.
    assert_eq!(obj.tagging, "ssmbakDeleted=1700000000");
    let f = read_back(&obj);
    assert!(f.is_tombstone());
    assert_eq!(f.deleted_at, Some(1_700_000_000));
    assert_eq!(f.snapshot("/gone", vec![]), None);
}

fn tombstone_by(arn: &str) -> EncodedObject {
    BackupRecord::Tombstone {
        name: "/gone".to_owned(),
        event_time: 1_700_000_000,
        param_type: None,
        deleted_by: Some(arn.to_owned()),
    }
    .encode()
}

/// The S3 tag-value pattern (S3 API reference, `Tag`), ASCII part.
fn s3_accepts(value: &str) -> bool {
    value.chars().count() <= TAG_VALUE_MAX
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " _.:/=+-@".contains(c))
}

#[test]
fn the_deleter_reads_back_from_metadata_and_from_the_tags_alone() {
    let arns = [
        "arn:aws:sts::123456789012:assumed-role/Admin/alice@example.com".to_owned(),
        // IAM names may hold `,` and `=`, which S3 refuses or we use as the escape.
        "arn:aws:iam::123456789012:user/ops/a,b=c+d".to_owned(),
        // Near the longest IAM user ARN (a path of up to 512 characters, a 64-character name),
        // with fifty commas: three tags.
        format!(
            "arn:aws-us-gov:iam::123456789012:user/{}{}/{}",
            "ops,".repeat(50),
            "p".repeat(260),
            "n".repeat(64)
        ),
    ];
    for arn in &arns {
        let obj = tombstone_by(arn);
        let tags = decode_tagging(&obj.tagging);
        assert!(tags.iter().all(|(_, v)| s3_accepts(v)), "{tags:?}");
        assert!(tags.len() <= TAGS_PER_OBJECT_MAX);
        // From the metadata and the tags, as a tombstone the CloudTrail record wrote.
        assert_eq!(read_back(&obj).deleted_by.as_deref(), Some(arn.as_str()));
        // From the tags alone, as one tagged in place after the change event wrote it.
        let f = StoredFields::read(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())), [])
            .expect("reads");
        assert_eq!(f.deleted_by.as_deref(), Some(arn.as_str()), "{tags:?}");
        assert!(f.is_tombstone());
    }
    // An ordinary ARN reads as itself in the console.
    let tags = decode_tagging(&tombstone_by(&arns[0]).tagging);
    assert_eq!(tags[1], (TAG_DELETED_BY.to_owned(), arns[0].clone()));
}

#[test]
fn a_deleter_that_does_not_fit_is_unknown_never_a_part() {
    // Too long for the tags: not tagged at all.
    let huge = format!("arn:aws:iam::1:user/{}", ",".repeat(400));
    assert_eq!(deleted_by_tags(&huge, 1), None);
    // No room left among the object's 10 tags.
    assert_eq!(deleted_by_tags("arn:aws:iam::1:user/a", 10), None);
    // Parts missing, out of order or badly escaped: unknown.
    let read = |tags: &[(&str, &str)]| {
        StoredFields::read(tags.iter().copied(), [])
            .expect("reads")
            .deleted_by
    };
    assert_eq!(
        read(&[("ssmbakDeleted", "1"), ("ssmbakDeletedBy2", "x")]),
        None
    );
    assert_eq!(
        read(&[("ssmbakDeletedBy", "a"), ("ssmbakDeletedBy3", "c")]),
        None
    );
    assert_eq!(read(&[("ssmbakDeletedBy", "a=2")]), None);
    assert_eq!(read(&[("ssmbakDeletedBy", "a=ZZb")]), None);
    assert_eq!(read(&[("ssmbakDeletedBy", "")]), None);
    assert_eq!(
        read(&[("ssmbakDeletedBy", "a=2C"), ("ssmbakDeletedBy2", "b")]),
        Some("a,b".to_owned())
    );
    // Not ours: a tag that merely starts the same.
    assert!(!is_deleted_by_tag("ssmbakDeletedByX"));
    assert!(!is_deleted_by_tag("ssmbakDeletedBy02"));
    assert!(is_deleted_by_tag("ssmbakDeletedBy2"));
}

#[test]
fn metadata_never_exceeds_the_s3_limit() {
    let mut s = snapshot("/big", "v");
    s.attributes.description = Some("é".repeat(1024));
    s.attributes.allowed_pattern = Some("^[a-z]+$".repeat(128));
    s.attributes.policies = Some(format!("[{}]", "{\"Type\":\"Expiration\"}".repeat(40)));
    s.attributes.key_id = Some("arn:aws:kms:us-east-1:123456789012:key/0000".to_owned());
    let obj = BackupRecord::Value {
        event_time: 1,
        snapshot: s,
    }
    .encode();
    assert!(metadata_size(&obj.metadata) <= METADATA_LIMIT);
    let f = read_back(&obj);
    assert!(!f.attributes.unknown.is_empty());
    // What could not be kept is named, and what is kept is exact.
    assert_eq!(
        f.attributes.key_id.as_deref(),
        Some("arn:aws:kms:us-east-1:123456789012:key/0000")
    );
    assert_eq!(f.attributes.version, Some(3));
}

fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,64}",
        "\\PC{0,40}",
        Just(String::new()),
        Just("a b+c=d&e%f".to_owned())
    ]
}

proptest! {
    /// Any deleter that fits the tags reads back from the tags alone, exactly; the tags are
    /// values S3 accepts.
    #[test]
    fn deleter_tags_round_trip(arn in "\\PC{1,700}") {
        if let Some(tags) = deleted_by_tags(&arn, 1) {
            prop_assert!(tags.iter().all(|(_, v)| s3_accepts(v)), "{:?}", tags);
            let f = StoredFields::read(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())), [])
                .expect("reads");
            prop_assert_eq!(f.deleted_by, Some(arn));
        }
    }

    /// Everything we write reads back as it was (within the metadata limit).
    #[test]
    fn value_records_round_trip(
        name in "/?[a-zA-Z0-9_.-]{1,10}(/[a-zA-Z0-9_.-]{1,10}){0,4}",
        value in "\\PC{0,200}",
        description in proptest::option::of(arb_text()),
        allowed_pattern in proptest::option::of(arb_text()),
        key_id in proptest::option::of("[a-zA-Z0-9:/_-]{1,60}"),
        version in proptest::option::of(1..100_000_i64),
        event_time in 0..4_000_000_000_i64,
        ty in prop_oneof![Just(ParameterType::String), Just(ParameterType::StringList), Just(ParameterType::SecureString)],
    ) {
        let mut s = snapshot(&name, &value);
        s.param_type = ty;
        s.attributes.description = description.clone();
        s.attributes.allowed_pattern = allowed_pattern;
        s.attributes.key_id = key_id;
        s.attributes.version = version;
        let obj = BackupRecord::Value { event_time, snapshot: s.clone() }.encode();
        prop_assert!(obj.tagging.is_ascii());
        prop_assert!(obj.metadata.values().all(|v| v.bytes().all(|b| b.is_ascii_graphic())));
        let f = read_back(&obj);
        prop_assert_eq!(f.event_time, Some(event_time));
        let mut expected = s;
        expected.name = object_key(&name);
        prop_assert_eq!(f.snapshot(&object_key(&name), obj.body.clone()), Some(expected));
        // The tag the original reads stays its sanitised form.
        let tags = decode_tagging(&obj.tagging);
        let tag = tags.iter().find(|(k, _)| k == TAG_DESCRIPTION).map(|(_, v)| v.clone());
        prop_assert_eq!(tag, description.map(|d| sanitize_description(&d)));
    }
}

#[test]
fn format_1_and_the_originals_record_no_tags_format_2_records_none_as_empty() {
    let plain = BackupRecord::Value {
        event_time: 1,
        snapshot: snapshot("/p", "v"),
    }
    .encode();
    assert_eq!(
        plain.metadata.get("ssmbak-format").map(String::as_str),
        Some("1")
    );
    assert_eq!(read_back(&plain).attributes.tags, None, "unknown, not none");
    let empty = BackupRecord::Value {
        event_time: 1,
        snapshot: snapshot("/p", "v").with_attributes(|a| a.set_extras(Extras::default())),
    }
    .encode();
    let f = read_back(&empty);
    assert_eq!(f.attributes.tags, Some(Tags::new()));
    assert_eq!(f.attributes.labels, Some(Vec::new()));
    assert!(
        !empty.metadata.contains_key("ssmbak-tags"),
        "none is left out"
    );
}

fn arb_tags() -> impl Strategy<Value = Tags> {
    proptest::collection::btree_map("[a-zA-Z0-9 _.:/=+@-]{1,128}", "\\PC{0,256}", 0..50)
}

proptest! {
    /// Tags and labels read back exactly: from the metadata when they fit, else from the
    /// sidecar the metadata names, whose name is its content's digest.
    #[test]
    fn tags_and_labels_round_trip_inline_or_in_a_sidecar(
        tags in arb_tags(),
        labels in proptest::collection::btree_set("[a-zA-Z][a-zA-Z0-9._-]{0,99}", 0..10),
        description in proptest::option::of(arb_text()),
    ) {
        let labels: Vec<String> = labels.into_iter().collect();
        let extras = Extras { tags, labels };
        let s = snapshot("/p", "v").with_attributes(|a| {
            a.description = description;
            a.set_extras(extras.clone());
        });
        let obj = BackupRecord::Value { event_time: 1, snapshot: s }.encode();
        prop_assert!(metadata_size(&obj.metadata) <= METADATA_LIMIT);
        prop_assert!(obj.metadata.values().all(|v| v.bytes().all(|b| b.is_ascii_graphic())));
        let f = read_back(&obj);
        match (&obj.sidecar, &f.extras) {
            (None, None) => prop_assert_eq!(f.attributes.extras(), Some(extras)),
            (Some(sidecar), Some(digest)) => {
                prop_assert_eq!(&sidecar.key, &extras_key(digest));
                prop_assert_eq!(&Extras::digest(&sidecar.body), digest);
                prop_assert_eq!(Extras::from_json(&sidecar.body).ok(), Some(extras));
                prop_assert_eq!(f.attributes.tags, None);
            }
            other => prop_assert!(false, "sidecar and its name disagree: {:?}", other),
        }
    }
}

#[test]
fn fifty_full_tags_go_to_a_sidecar() {
    let tags: Tags = (0..50)
        .map(|i| (format!("{i:0128}"), "v".repeat(256)))
        .collect();
    let obj = BackupRecord::Value {
        event_time: 1,
        snapshot: snapshot("/p", "v").with_attributes(|a| {
            a.set_extras(Extras {
                tags,
                labels: vec!["stable".to_owned()],
            })
        }),
    }
    .encode();
    let sidecar = obj.sidecar.expect("a sidecar");
    assert!(sidecar.key.starts_with(".ssmbak/extras/"));
    assert!(sidecar.body.len() > 19_000);
    assert!(!obj.metadata.contains_key("ssmbak-tags"));
}

fn description_len(record: &BackupRecord) -> usize {
    match record {
        BackupRecord::Value { snapshot, .. } => snapshot
            .attributes
            .description
            .as_ref()
            .map_or(0, String::len),
        BackupRecord::Tombstone { .. } => 0,
    }
}

fn arb_earlier() -> impl Strategy<Value = EarlierVersion> {
    (
        prop_oneof!["[A-Za-z0-9._]{32}", "[ -~]{1,40}", "\\PC{1,8}"],
        any::<bool>(),
        0..4_000_000_000_i64,
        proptest::option::of(1..100_000_i64),
        proptest::option::of(0..4_000_000_000_000_i64),
    )
        .prop_filter("never null", |(id, ..)| id != "null")
        .prop_map(|(version_id, deleted, time, v, ms)| EarlierVersion {
            version_id,
            deleted,
            time,
            ssm_version: v.filter(|_| !deleted),
            modified_ms: ms.filter(|_| !deleted),
            tags_digest: None,
        })
}

proptest! {
    /// The earlier versions a version names read back as the first of those given, as many as
    /// fit beside everything else, whatever their ids hold; the metadata stays within S3's
    /// limit and in plain ASCII.
    #[test]
    fn earlier_versions_read_back_as_many_as_fit(
        earlier in prop::collection::vec(arb_earlier(), 0..70),
        description in proptest::option::of("\\PC{0,1024}"),
        tombstone in any::<bool>(),
    ) {
        let record = match tombstone {
            true => BackupRecord::Tombstone { name: "/a".to_owned(), event_time: 5, param_type: None, deleted_by: None },
            false => {
                let mut s = snapshot("/a", "v");
                s.attributes.description = description;
                BackupRecord::Value { event_time: 5, snapshot: s }
            }
        };
        let mut obj = record.encode();
        let before = read_back(&obj);
        obj.name_earlier(&earlier);
        prop_assert!(metadata_size(&obj.metadata) <= METADATA_LIMIT);
        prop_assert!(obj.metadata.values().all(|v| v.bytes().all(|b| b.is_ascii_graphic())));
        let f = read_back(&obj);
        let n = f.earlier.len();
        prop_assert_eq!(&f.earlier[..], &earlier[..n]);
        // Everything else as it was.
        prop_assert_eq!(StoredFields { earlier: Vec::new(), ..f }, before);
        // Only the limit stops it: beside no description, at least 30 ids of S3's usual form.
        let usual = |e: &EarlierVersion| e.version_id.len() <= 32 && e.version_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
        if record.key() == "/a" && description_len(&record) == 0 && earlier.iter().all(usual) {
            prop_assert!(n >= earlier.len().min(30), "{} of {}", n, earlier.len());
        }
    }
}

#[test]
fn a_list_of_earlier_versions_is_read_whole_or_not_at_all() {
    let read = |value: &str| {
        StoredFields::read([], [("ssmbak-format", "2"), ("ssmbak-earlier", value)])
            .expect("an unreadable list is ignored, never an error")
            .earlier
    };
    let v = |id: &str, deleted: bool, time: i64, ssm_version: Option<i64>| EarlierVersion {
        version_id: id.to_owned(),
        deleted,
        time,
        ssm_version,
        modified_ms: None,
        tags_digest: None,
    };
    assert_eq!(
        read("a%2Cb,v,100,3;c,d,90,"),
        vec![v("a,b", false, 100, Some(3)), v("c", true, 90, None)]
    );
    // With the version's LastModifiedDate (written since issue 28).
    assert_eq!(
        read("a,v,100,3,99400;c,d,90,"),
        vec![
            EarlierVersion {
                modified_ms: Some(99_400),
                ..v("a", false, 100, Some(3))
            },
            v("c", true, 90, None)
        ]
    );
    for broken in [
        "a,v,100,3;c,x,90,",
        "a,v,100,3;c,d,90",
        "a,v,ten,3",
        "a,v,100,3,4,5",
        "a,v,100,3,x",
        "a,d,100,,4",
        "null,v,100,3",
        ",v,100,3",
        // A tombstone holds no SSM version.
        "a,d,100,3",
        "",
    ] {
        assert_eq!(read(broken), vec![], "{broken:?}");
    }
}

#[test]
fn a_version_names_the_current_one_then_those_it_named() {
    let value = |id: &str, time: i64| EarlierVersion {
        version_id: id.to_owned(),
        deleted: false,
        time,
        ssm_version: None,
        modified_ms: None,
        tags_digest: None,
    };
    let tombstone = EarlierVersion {
        deleted: true,
        ..value("v1", 150)
    };
    let current = StoredFields {
        event_time: Some(200),
        // v2 named twice, by a writer that raced another: named once after.
        earlier: vec![tombstone, value("v2", 100), value("v2", 100)],
        ..StoredFields::default()
    };
    let ids: Vec<String> = earlier::after("v3", &current)
        .into_iter()
        .map(|e| e.version_id)
        .collect();
    assert_eq!(ids, ["v3", "v1", "v2"]);
    // The original's versions, as HeadObject sees them (no metadata), and the null version
    // place nothing, so nothing is named.
    assert_eq!(earlier::after("v3", &StoredFields::default()), vec![]);
    assert_eq!(earlier::after("null", &current), vec![]);
}
