//! Damaged files: a torn tail is cut back under the same epoch, a changed byte is cut back under a new one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use crate::support::data_dir::{TempDir, frames};
use crate::support::rest::{Http, history};
use crate::{DataServer, epoch, numbered, publish_at, start};

/// Whether a log line tells about damage found in `file` (a segment's file name).
fn tells_damage(line: &str, file: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    line.contains(file)
        && ["torn", "truncat", "corrupt", "checksum", "damage", " cut"]
            .iter()
            .any(|word| lower.contains(word))
}

/// Expects exactly one stderr line about damage in `segment`: waits for it, then gives any further line a moment
/// to show up.
fn expect_one_damage_line(server: &DataServer, segment: &Path) {
    let file = segment
        .file_name()
        .and_then(|name| name.to_str())
        .expect("a file name");
    server
        .proc
        .stderr_matching(&format!("about the damage in {file}"), |line| {
            tells_damage(line, file)
        });
    std::thread::sleep(Duration::from_millis(200));
    let more = server.proc.drain_stderr();
    assert!(
        !more.lines().any(|line| tells_damage(line, file)),
        "one line about the damage, not more: {more}"
    );
}

/// Publishes `{"n": 1..=n}` on `channel`, kills the server with SIGKILL and returns the epoch it had and the
/// newest log segment's path.
fn fill_and_crash(dir: &TempDir, channel: &str, n: u64) -> (String, PathBuf) {
    let mut server = start("127.0.0.1:0", dir, &[]);
    let mut http = Http::new(&server.addr);
    for i in 1..=n {
        publish_at(&mut http, channel, &json!({"n": i}), false, i);
    }
    let before = epoch(&server.addr, channel);
    server.proc.kill_hard();
    let segment = dir
        .segments()
        .pop()
        .unwrap_or_else(|| panic!("no log segment in {}", dir.arg()));
    (before, segment)
}

#[test]
fn a_torn_tail_is_cut_back_and_the_epoch_stays() {
    let dir = TempDir::new("tail");
    let (before, segment) = fill_and_crash(&dir, "tail", 10);
    let bytes = std::fs::read(&segment).expect("read the segment");
    let last = frames(&bytes).pop().expect("records in the segment");
    assert_eq!(
        last.event(),
        Some(("tail".to_owned(), 10)),
        "the newest record is the last publish"
    );
    // A crash in the middle of writing the last record: its last five bytes never reached the file.
    let cut = last.end() - 5;
    std::fs::write(&segment, &bytes[..cut]).expect("truncate the segment");

    let server = start("127.0.0.1:0", &dir, &[]);
    expect_one_damage_line(&server, &segment);
    let (after, events) = history(&server.addr, "tail");
    assert_eq!(
        after, before,
        "a torn tail held nothing acknowledged: the epoch stays"
    );
    assert_eq!(
        events,
        numbered(9),
        "everything before the torn record is kept"
    );
    assert!(
        std::fs::metadata(&segment).map(|m| m.len()).unwrap_or(0) <= last.start as u64,
        "the torn record is cut off the file"
    );
    let mut http = Http::new(&server.addr);
    publish_at(&mut http, "tail", &json!({"n": 10}), false, 10);
}

#[test]
fn a_changed_byte_is_cut_back_and_takes_a_new_epoch() {
    let dir = TempDir::new("flip");
    let (before, segment) = fill_and_crash(&dir, "flip", 20);
    let mut bytes = std::fs::read(&segment).expect("read the segment");
    let damaged = frames(&bytes)
        .into_iter()
        .find(|frame| frame.event() == Some(("flip".to_owned(), 10)))
        .expect("the record of offset 10");
    // A byte of the event's JSON, so the record still parses but its checksum disagrees.
    bytes[damaged.end() - 2] ^= 0x01;
    std::fs::write(&segment, &bytes).expect("write the damaged segment");

    let mut server = start("127.0.0.1:0", &dir, &[]);
    expect_one_damage_line(&server, &segment);
    let (after, events) = history(&server.addr, "flip");
    assert_ne!(
        after, before,
        "damage may have lost acknowledged events: clients must resync under a new epoch"
    );
    assert_eq!(
        events,
        numbered(9),
        "everything before the damaged record is kept"
    );
    let mut http = Http::new(&server.addr);
    publish_at(&mut http, "flip", &json!({"n": "next"}), false, 10);
    assert_eq!(epoch(&server.addr, "flip"), after);

    // The cut is for good: the next start finds the same epoch and no more damage.
    server.proc.signal("TERM");
    assert!(server.proc.wait().success());
    let again = start("127.0.0.1:0", &dir, &[]);
    let (epoch_again, events) = history(&again.addr, "flip");
    assert_eq!(epoch_again, after);
    let mut expected = numbered(9);
    expected.push((10, json!({"n": "next"})));
    assert_eq!(events, expected);
}
