//! `s3bak preview`: the version of each key at the time, as a table or JSON.

use super::selection::Selection;
use super::session::Selected;
use crate::common::checktime;
use crate::common::output::Format;
use anyhow::Context;
use ssmbak_core::reader::ListedVersion;

pub(crate) fn preview(selection: &Selection, selected: &[Selected]) -> anyhow::Result<()> {
    let rows: Vec<(String, Option<&ListedVersion>)> = selected
        .iter()
        .map(|s| (s.key.clone(), s.entry()))
        .collect();
    match selection.output {
        Format::Json => {
            let keys: Vec<serde_json::Value> = rows
                .iter()
                .map(|(key, e)| {
                    serde_json::json!({
                        "key": key,
                        "version_id": e.map(|e| e.version_id.clone()),
                        "last_modified": e.map(|e| checktime::format(e.last_modified_ms.div_euclid(1000))),
                        "size": e.filter(|e| !e.is_delete_marker).map(|e| e.size),
                        "deleted": e.is_some_and(|e| e.is_delete_marker),
                        "exists": e.is_some_and(|e| !e.is_delete_marker),
                        "storage_class": e.and_then(|e| e.storage_class.clone()),
                    })
                })
                .collect();
            let doc = serde_json::json!({"bucket": selection.bucket, "time": checktime::format(selection.checktime), "keys": keys});
            println!(
                "{}",
                serde_json::to_string_pretty(&doc).context("JSON output")?
            );
        }
        Format::Table => {
            let mut table = comfy_table::Table::new();
            table
                .load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
                .set_header([
                    "Key",
                    "Version",
                    "Last modified",
                    "Size",
                    "State",
                    "Storage class",
                ]);
            for (key, e) in rows {
                let state = match e {
                    None => "not yet created",
                    Some(e) if e.is_delete_marker => "deleted",
                    Some(_) => "present",
                };
                table.add_row([
                    key,
                    e.map(|e| e.version_id.clone()).unwrap_or_default(),
                    e.map(|e| checktime::format(e.last_modified_ms.div_euclid(1000)))
                        .unwrap_or_default(),
                    e.filter(|e| !e.is_delete_marker)
                        .map(|e| e.size.to_string())
                        .unwrap_or_default(),
                    state.to_owned(),
                    e.and_then(|e| e.storage_class.clone()).unwrap_or_default(),
                ]);
            }
            println!("{table}");
        }
    }
    Ok(())
}
