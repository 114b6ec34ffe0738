//! The durable store against a disk kept in memory: the record codec (round trips, every torn tail, every
//! flipped byte), group commit, failed writes, snapshots and segment rolls, the disk budget, and a property test
//! that crashes the store at random points against a model of what was acknowledged.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::record::{
    Damage, FORMAT_VERSION, HEADER_LEN, Record, RecordReader, check_header, header,
};
use super::{DurableConfig, DurableStore, FormatError, FsyncPolicy, Restorer};
use crate::server::store::{AppendJson, Appended, KeptKey, Store};
use crate::server::{Hub, HubConfig, HubOutput, Publish};
use crate::time::Timestamp;
use crate::wire::{ChannelName, IdempotencyKey, StreamPosition};

fn ch(name: &str) -> ChannelName {
    ChannelName::new(name).expect("valid")
}

fn ms(n: u64) -> Timestamp {
    Timestamp::from_millis(n)
}

/// Files by name: what a write put there, and how much of it is synced.
#[derive(Debug, Default, Clone)]
struct Disk {
    files: BTreeMap<String, (Vec<u8>, usize)>,
    snapshots: usize,
    rolls: usize,
}

impl Disk {
    /// Does every write and snapshot the store asks for; returns the appends completed.
    fn drive(&mut self, store: &mut DurableStore, now: Timestamp) -> usize {
        let mut done = 0;
        loop {
            let mut progress = false;
            if let Some(write) = store.poll_write() {
                progress = true;
                let name = format!("{:016x}.log", write.segment);
                if write.create {
                    self.rolls += 1;
                    assert!(!self.files.contains_key(&name), "{name} created twice");
                    assert!(
                        check_header(&write.bytes).is_ok(),
                        "a new segment starts with the header"
                    );
                }
                let file = self.files.entry(name).or_default();
                file.0.extend_from_slice(&write.bytes);
                if write.sync {
                    file.1 = file.0.len();
                }
                done += store.handle_written(now, write.batch);
            }
            if let Some(job) = store.poll_snapshot() {
                progress = true;
                let mut bytes = Vec::new();
                let len = job
                    .write_to(|chunk| {
                        bytes.extend_from_slice(chunk);
                        Ok::<(), ()>(())
                    })
                    .expect("writing to memory");
                assert_eq!(len, bytes.len() as u64);
                let synced = bytes.len();
                self.files.retain(|name, _| match parse(name) {
                    Some((id, _)) => id > job.covers,
                    None => true,
                });
                self.files
                    .insert(format!("{:016x}.snap", job.covers), (bytes, synced));
                self.snapshots += 1;
                store.handle_snapshot_written(now, job.covers, len);
            }
            if !progress {
                return done;
            }
        }
    }

    /// A power loss: every file keeps its synced part and `keep` more bytes of the rest (a torn write).
    fn power_loss(&mut self, keep: usize) {
        for (bytes, synced) in self.files.values_mut() {
            let cut = (*synced + keep).min(bytes.len());
            bytes.truncate(cut);
            *synced = cut;
        }
    }

    /// What a driver does at start: the newest snapshot, then the logs after it, cutting damage.
    fn restore(
        &mut self,
        config: DurableConfig,
        now: Timestamp,
    ) -> (DurableStore, super::RestoreReport) {
        let mut restorer = Restorer::new(config);
        let snap = self
            .files
            .keys()
            .filter_map(|n| parse(n).filter(|(_, s)| *s))
            .map(|(id, _)| id)
            .max();
        let mut names: Vec<(u64, String)> = Vec::new();
        if let Some(id) = snap {
            let name = format!("{id:016x}.snap");
            let scan = restorer
                .snapshot(id, &self.files[&name].0)
                .expect("our format");
            assert_eq!(scan.damage, None, "snapshots are whole");
        }
        for name in self.files.keys() {
            if let Some((id, false)) = parse(name)
                && snap.is_none_or(|s| id > s)
            {
                names.push((id, name.clone()));
            }
        }
        names.sort();
        for (id, name) in names {
            let scan = restorer
                .segment(id, &self.files[&name].0)
                .expect("our format");
            if scan.damage.is_some() {
                if scan.good_len == 0 {
                    self.files.remove(&name);
                    continue;
                }
                let file = self.files.get_mut(&name).expect("listed");
                file.0.truncate(scan.good_len as usize);
                file.1 = file.1.min(file.0.len());
            }
        }
        restorer.finish(now, String::from("fresh"))
    }
}

fn parse(name: &str) -> Option<(u64, bool)> {
    let (id, ext) = name.split_once('.')?;
    Some((u64::from_str_radix(id, 16).ok()?, ext == "snap"))
}

fn config() -> DurableConfig {
    let mut c = DurableConfig::new(4, Duration::from_secs(3600));
    c.segment_bytes = 300;
    c.min_log_bytes = 500;
    c
}

fn kept(store: &DurableStore, now: Timestamp, channel: &str) -> Vec<(u64, Value)> {
    let page = store.page(now, &ch(channel), None, 1000).events;
    page.into_iter()
        .map(|(o, e)| (o, Value::clone(&e)))
        .collect()
}

#[test]
fn records_round_trip_and_every_torn_tail_is_found() {
    let records = vec![
        Record::Epoch(String::from("e1")),
        Record::Channel {
            channel: ch("a/b"),
            head: 7,
            epoch: Some(String::from("e2")),
        },
        Record::Forget { channel: ch("a/b") },
        Record::Event {
            channel: ch("a/b"),
            offset: 8,
            at: ms(5),
            retain: true,
            event: Arc::new(json!({"x": [1, "two", null]})),
        },
        Record::State {
            channel: ch("c"),
            event: Arc::new(json!("s")),
        },
        Record::Cursor {
            name: String::from("webhook:x"),
            channel: ch("c"),
            offset: 3,
        },
        Record::Trim {
            channel: ch("c"),
            through: 2,
        },
        Record::Key(KeptKey {
            channel: ch("c"),
            key: IdempotencyKey::new("job-7/é").expect("valid"),
            epoch: String::from("e3"),
            first: 4,
            last: 9,
            at: ms(6),
        }),
        Record::SnapshotEnd,
    ];
    let mut file = header().to_vec();
    let mut ends = vec![file.len()];
    for r in &records {
        r.encode(&mut file);
        ends.push(file.len());
    }
    let read: Vec<Record> = RecordReader::new(&file).map(|(r, _)| r).collect();
    assert_eq!(read, records);
    for cut in ends[0]..file.len() {
        let mut reader = RecordReader::new(&file[..cut]);
        let n = reader.by_ref().count();
        let whole = ends.iter().filter(|&&e| e <= cut).count() - 1;
        assert_eq!(n, whole, "cut at {cut}");
        assert_eq!(reader.good_len(), ends[whole]);
        let torn = ends.contains(&cut);
        assert_eq!(
            reader.damage(),
            (!torn).then_some(Damage::TornTail),
            "cut at {cut}"
        );
    }
    // Zeros after the last record are space reserved for the segment and not written yet: a clean end.
    let mut reserved = file.clone();
    reserved.extend_from_slice(&[0u8; 64]);
    let mut reader = RecordReader::new(&reserved);
    assert_eq!(reader.by_ref().count(), records.len());
    assert_eq!((reader.damage(), reader.good_len()), (None, file.len()));
    // A write into reserved space that the crash cut short: a record whose end is zeros, zeros after it.
    for cut in ends[ends.len() - 2] + 1..file.len() {
        let mut torn = file[..cut].to_vec();
        torn.resize(file.len() + 64, 0);
        let mut reader = RecordReader::new(&torn);
        assert_eq!(reader.by_ref().count(), records.len() - 1, "cut at {cut}");
        assert_eq!(reader.damage(), Some(Damage::TornTail), "cut at {cut}");
        assert_eq!(reader.good_len(), ends[ends.len() - 2]);
    }
}

#[test]
fn headers_of_other_files_and_newer_versions_are_refused() {
    assert_eq!(check_header(b"short"), Err(FormatError::NotOurs));
    assert_eq!(check_header(&[7u8; 16]), Err(FormatError::NotOurs));
    let mut newer = header();
    newer[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    assert_eq!(
        check_header(&newer),
        Err(FormatError::NewerVersion {
            found: FORMAT_VERSION + 1,
            supported: FORMAT_VERSION
        })
    );
    assert_eq!(check_header(&header()), Ok(()));
}

proptest! {
    /// A changed byte anywhere after the header is found (corrupt or torn), the reader stops at the record
    /// before it, and never panics or believes a changed record.
    #[test]
    fn a_flipped_byte_is_never_believed(at in 0usize..400, flip in 1u8..=255) {
        let mut file = header().to_vec();
        let mut ends = vec![file.len()];
        for n in 0..6u64 {
            Record::Event {
                channel: ch("jobs/1"),
                offset: n + 1,
                at: ms(n),
                retain: n % 2 == 0,
                event: Arc::new(json!({"n": n, "pad": "abcdefgh"})),
            }
            .encode(&mut file);
            ends.push(file.len());
        }
        let at = 16 + at % (file.len() - 16);
        file[at] ^= flip;
        let mut reader = RecordReader::new(&file);
        let read: Vec<Record> = reader.by_ref().map(|(r, _)| r).collect();
        let before = ends.iter().filter(|&&e| e <= at).count() - 1;
        prop_assert_eq!(read.len(), before, "records before the flipped byte, and none after");
        prop_assert!(reader.damage().is_some());
        prop_assert_eq!(reader.good_len(), ends[before]);
    }
}

#[test]
fn group_commit_one_write_for_what_queued_behind_the_last() {
    let mut store = DurableStore::new(config(), String::from("E"));
    let mut disk = Disk::default();
    disk.drive(&mut store, ms(0));
    let a = ch("a");
    assert_eq!(
        store.append_json(ms(1), &a, Arc::new(json!(1)), false),
        Appended::Pending(1)
    );
    let first = store.poll_write().expect("written at once");
    assert_eq!(
        store.append_json(ms(2), &a, Arc::new(json!(2)), false),
        Appended::Pending(2)
    );
    assert_eq!(
        store.append_json(ms(3), &a, Arc::new(json!(3)), true),
        Appended::Pending(3)
    );
    assert_eq!(store.poll_write(), None, "one write at a time");
    assert_eq!(store.offset(&a), 0, "nothing readable before its write");
    assert_eq!(store.handle_written(ms(4), first.batch), 1);
    assert_eq!(kept(&store, ms(4), "a"), vec![(1, json!(1))]);
    let second = store.poll_write().expect("the queued two");
    assert_eq!(store.handle_written(ms(5), second.batch), 2);
    assert_eq!(store.state(&a).state, Some(json!(3)));
    assert_eq!(store.check(), Ok(()));
}

#[test]
fn always_writes_and_syncs_one_event_at_a_time_and_off_does_not_sync() {
    for (policy, per_write, sync) in [(FsyncPolicy::Always, 1, true), (FsyncPolicy::Off, 3, false)]
    {
        let mut c = config();
        c.fsync = policy;
        let mut store = DurableStore::new(c, String::from("E"));
        let created = store.poll_write().expect("the segment");
        assert!(
            created.create && created.sync,
            "a new file is always synced"
        );
        store.handle_written(ms(0), created.batch);
        for n in 1..=3 {
            store.append_json(ms(n), &ch("a"), Arc::new(json!(n)), false);
        }
        let w = store.poll_write().expect("a write");
        assert_eq!(
            (store.handle_written(ms(9), w.batch), w.sync),
            (per_write, sync),
            "{policy:?}"
        );
    }
}

#[test]
fn a_failed_write_drops_what_was_pending_and_gives_the_offsets_again() {
    let mut store = DurableStore::new(config(), String::from("E"));
    let mut disk = Disk::default();
    disk.drive(&mut store, ms(0));
    let a = ch("a");
    store.append_json(ms(1), &a, Arc::new(json!("x")), false);
    let w = store.poll_write().expect("write");
    store.append_json(ms(2), &a, Arc::new(json!("y")), true);
    store.set_cursor("hook", &a, 0);
    assert_eq!(store.handle_write_failed(ms(3), w.batch), 2);
    assert_eq!(store.check(), Ok(()));
    assert_eq!(
        store.append_json(ms(4), &a, Arc::new(json!("z")), false),
        Appended::Pending(1)
    );
    assert_eq!(disk.drive(&mut store, ms(5)), 1);
    assert_eq!(kept(&store, ms(5), "a"), vec![(1, json!("z"))]);
    assert_eq!(
        store.state(&a).state,
        None,
        "the failed retain never happened"
    );
}

#[test]
fn restart_restores_epoch_offsets_history_state_and_cursors_through_snapshots_and_rolls() {
    let mut store = DurableStore::new(config(), String::from("E"));
    let mut disk = Disk::default();
    for n in 1..=60u64 {
        let channel = ch(["a", "b/c", "d"][(n % 3) as usize]);
        store.append_json(ms(n), &channel, Arc::new(json!({"n": n})), n % 7 == 0);
        if n % 5 == 0 {
            store.set_cursor("webhook:u", &channel, n / 3);
        }
        if n % 2 == 0 {
            disk.drive(&mut store, ms(n));
        }
    }
    disk.drive(&mut store, ms(61));
    assert!(
        disk.snapshots >= 2 && disk.rolls >= 4,
        "snapshots {} rolls {}",
        disk.snapshots,
        disk.rolls
    );
    let (restored, report) = disk.restore(config(), ms(100));
    assert!(!report.epoch_changed);
    assert_eq!(restored.epoch(&ch("a")), store.epoch(&ch("a")));
    for name in ["a", "b/c", "d"] {
        let c = ch(name);
        assert_eq!(restored.state(&c), store.state(&c), "{name}");
        assert_eq!(
            kept(&restored, ms(100), name),
            kept(&store, ms(100), name),
            "{name}"
        );
        assert_eq!(
            restored.cursor("webhook:u", &c),
            store.cursor("webhook:u", &c),
            "{name}"
        );
    }
    let at = StreamPosition {
        epoch: String::from(store.epoch(&ch("a"))),
        offset: 18,
    };
    assert_eq!(
        restored.replay(ms(100), &ch("a"), &at).map(|v| v.len()),
        Some(2),
        "a resubscribe with since recovers across the restart"
    );
    assert_eq!(restored.check(), Ok(()));
}

#[test]
fn a_corrupt_record_cuts_the_log_there_and_changes_the_epoch() {
    let mut store = DurableStore::new(config(), String::from("E"));
    let mut disk = Disk::default();
    for n in 1..=3u64 {
        store.append_json(ms(n), &ch("a"), Arc::new(json!(n)), false);
        disk.drive(&mut store, ms(n));
    }
    let (_, file) = disk.files.iter_mut().next().expect("one segment");
    let len = file.0.len();
    // Inside the second of the three events (each record is 32 bytes): a whole record follows the damage.
    file.0[len - 3 - 32] ^= 0x40;
    let (mut restored, report) = disk.restore(config(), ms(10));
    assert!(report.epoch_changed);
    assert_eq!(restored.epoch(&ch("a")), "fresh");
    assert_eq!(kept(&restored, ms(10), "a"), vec![(1, json!(1))]);
    // The new epoch and a whole snapshot are written at once: the next restart finds no damage and keeps both.
    disk.drive(&mut restored, ms(11));
    assert_eq!(disk.snapshots, 1);
    let (again, report) = disk.restore(config(), ms(12));
    assert!(!report.epoch_changed);
    assert_eq!(again.epoch(&ch("a")), "fresh");
    assert_eq!(kept(&again, ms(12), "a"), vec![(1, json!(1))]);
}

#[test]
fn the_disk_budget_drops_the_oldest_history_and_keeps_the_state() {
    let mut c = config();
    c.max_disk_bytes = Some(3000);
    c.history_size = 1000;
    let mut store = DurableStore::new(c.clone(), String::from("E"));
    let mut disk = Disk::default();
    store.append_json(ms(0), &ch("s"), Arc::new(json!("the state")), true);
    for n in 1..=200u64 {
        store.append_json(
            ms(n),
            &ch("a"),
            Arc::new(json!({"n": n, "pad": "0123456789"})),
            false,
        );
        disk.drive(&mut store, ms(n));
        let on_disk: usize = disk.files.values().map(|f| f.0.len()).sum();
        assert!(
            on_disk as u64 <= 3000 + 300,
            "{on_disk} bytes on disk after {n}"
        );
        assert_eq!(store.check(), Ok(()));
    }
    let history = kept(&store, ms(300), "a");
    assert!(
        history.len() < 100 && history.last().map(|e| e.0) == Some(200),
        "{}",
        history.len()
    );
    assert_eq!(store.state(&ch("s")).state, Some(json!("the state")));
    let (restored, _) = disk.restore(c, ms(300));
    assert_eq!(restored.state(&ch("s")).state, Some(json!("the state")));
    assert_eq!(kept(&restored, ms(300), "a"), history);
}

/// The disk budget holds at every moment, also while a slow snapshot is written and publishes keep coming: the
/// old snapshot, the log it replaces, the new snapshot and the new log (with the space its segments reserve) fit
/// together. A log at its share waits for the snapshot, and goes on once the snapshot is in place.
#[test]
fn the_disk_budget_holds_while_a_slow_snapshot_is_written() {
    const BUDGET: u64 = 24_000;
    let mut c = config();
    c.max_disk_bytes = Some(BUDGET);
    c.history_size = 100_000;
    c.segment_bytes = 64 * 1024 * 1024;
    c.min_log_bytes = 64 * 1024 * 1024;
    let mut store = DurableStore::new(c, String::from("E"));
    // Bytes each file takes on disk: a segment at least what it reserved when created.
    let mut files: BTreeMap<String, u64> = BTreeMap::new();
    let mut running: Option<(u64, u64)> = None;
    let (mut snapshots, mut waits, mut written) = (0, 0, 0);
    // Does every write the store hands out; gives the appends done.
    let write_all = |store: &mut DurableStore, files: &mut BTreeMap<String, u64>, now| {
        let mut done = 0;
        while let Some(w) = store.poll_write() {
            let size = files.entry(format!("{:016x}.log", w.segment)).or_default();
            *size = (*size).max(w.reserve).max(w.offset + w.bytes.len() as u64);
            done += store.handle_written(now, w.batch);
        }
        done
    };
    store.append_json(ms(0), &ch("s"), Arc::new(json!("the state")), true);
    for n in 1..=3_000u64 {
        store.append_json(
            ms(n),
            &ch("a"),
            Arc::new(json!({"n": n, "pad": "0123456789"})),
            false,
        );
        written += write_all(&mut store, &mut files, ms(n));
        if running.is_none()
            && let Some(job) = store.poll_snapshot()
        {
            let len = job.write_to(|_| Ok::<(), ()>(())).expect("counting");
            files.insert(format!("{:016x}.snap.tmp", job.covers), len);
            running = Some((job.covers, len));
        }
        let on_disk: u64 = files.values().sum();
        assert!(
            on_disk <= BUDGET,
            "{on_disk} bytes on disk after {n}: {files:?}"
        );
        if running.is_some() && store.pending_appends() > 0 {
            waits += 1;
        }
        // The snapshot takes as long as about 120 publishes: more than the log's share of the budget.
        if n % 120 == 0
            && let Some((covers, len)) = running.take()
        {
            files.retain(|name, _| {
                let id = u64::from_str_radix(&name[..16], 16).expect("a hex id");
                id > covers
            });
            files.insert(format!("{covers:016x}.snap"), len);
            store.handle_snapshot_written(ms(n), covers, len);
            snapshots += 1;
            written += write_all(&mut store, &mut files, ms(n));
        }
        assert_eq!(store.check(), Ok(()));
    }
    assert!(snapshots >= 10, "{snapshots} snapshots");
    assert!(waits > 100, "the log waited for a snapshot {waits} times");
    assert_eq!(
        written + store.pending_appends(),
        3_001,
        "every append written or waiting"
    );
    let history = kept(&store, ms(3_000), "a");
    assert!(
        history.len() > 50 && history.last().map(|e| e.0) <= Some(3_000),
        "{} events kept",
        history.len()
    );
    assert_eq!(store.state(&ch("s")).state, Some(json!("the state")));
}

/// A budget too small for even one event keeps the retained state and the offsets (of a channel the hub holds),
/// and never stops the store: every append is written.
#[test]
fn a_budget_smaller_than_an_event_keeps_the_state_and_writes_every_append() {
    for budget in [1, 64, 500, 3000] {
        let mut c = config();
        c.max_disk_bytes = Some(budget);
        let mut store = DurableStore::new(c.clone(), String::from("E"));
        let mut disk = Disk::default();
        store.hold(&ch("a"));
        store.append_json(ms(0), &ch("s"), Arc::new(json!("the state")), true);
        let mut written = disk.drive(&mut store, ms(0));
        for n in 1..=100u64 {
            store.append_json(ms(n), &ch("a"), Arc::new(json!({"n": n})), false);
            written += disk.drive(&mut store, ms(n));
            assert_eq!(store.check(), Ok(()), "budget {budget}");
        }
        assert_eq!(written, 101, "budget {budget}");
        assert_eq!(store.offset(&ch("a")), 100, "budget {budget}");
        let history = kept(&store, ms(200), "a");
        let (restored, _) = disk.restore(c, ms(200));
        // A log with no event left and no state is not kept across a restart: its next event starts a new epoch.
        let head = if history.is_empty() { 0 } else { 100 };
        assert_eq!(restored.offset(&ch("a")), head, "budget {budget}");
        assert_eq!(kept(&restored, ms(200), "a"), history, "budget {budget}");
        assert_eq!(restored.state(&ch("s")).state, Some(json!("the state")));
    }
}

#[derive(Debug, Clone)]
enum Op {
    Append(u8, bool),
    Drive,
    Fail,
    Cursor(u8, u8),
    Crash(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..3, any::<bool>()).prop_map(|(c, r)| Op::Append(c, r)),
        3 => Just(Op::Drive),
        1 => Just(Op::Fail),
        1 => (0u8..3, 0u8..20).prop_map(|(c, o)| Op::Cursor(c, o)),
        1 => (0u8..60).prop_map(Op::Crash),
    ]
}

/// What was acknowledged, per channel: every event (offset, value) and the retained state.
#[derive(Debug, Default, Clone)]
struct Model {
    events: BTreeMap<u8, Vec<(u64, Value)>>,
    state: BTreeMap<u8, Value>,
}

/// After a crash: the restored store holds every acknowledged event, plus possibly a prefix (in append order)
/// of the appends whose write reached the disk without being acknowledged: nobody saw those, so keeping them is
/// as right as losing them. The survivors join the model; the rest of `pending` is gone.
fn survivors(
    restored: &DurableStore,
    now: Timestamp,
    names: &[&str],
    model: &mut Model,
    pending: &mut Vec<(u8, u64, Value, bool)>,
) -> Result<(), TestCaseError> {
    let mut heads: BTreeMap<u8, u64> = BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        heads.insert(i as u8, restored.offset(&ch(name)));
    }
    let mut survived = 0;
    for (c, offset, _, _) in pending.iter() {
        if heads[c] >= *offset {
            survived += 1;
        } else {
            break;
        }
    }
    for (c, offset, value, retain) in pending.drain(..) {
        if survived == 0 {
            prop_assert!(
                heads[&c] < offset,
                "{} survived after an earlier append was lost",
                offset
            );
            continue;
        }
        survived -= 1;
        let events = model.events.entry(c).or_default();
        events.push((offset, value.clone()));
        if retain {
            model.state.insert(c, value);
        }
    }
    for (i, name) in names.iter().enumerate() {
        let events = model.events.get(&(i as u8)).cloned().unwrap_or_default();
        let head = events.last().map_or(0, |e| e.0);
        let tail: Vec<(u64, Value)> = events[events.len().saturating_sub(4)..].to_vec();
        prop_assert_eq!(restored.offset(&ch(name)), head);
        prop_assert_eq!(kept(restored, now, name), tail);
        prop_assert_eq!(
            restored.state(&ch(name)).state,
            model.state.get(&(i as u8)).cloned()
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    /// Random appends, writes, failed writes and power losses (tearing the unsynced tail at a random point):
    /// after every restart the store holds exactly what was acknowledged (the last `history_size` of it), with
    /// the same epoch, and gives the next offset after the last acknowledged one.
    #[test]
    fn crashes_lose_nothing_acknowledged(ops in proptest::collection::vec(op(), 1..120)) {
        let names = ["a", "b/x", "c"];
        let mut store = DurableStore::new(config(), String::from("E"));
        let mut disk = Disk::default();
        let mut model = Model::default();
        // Appends waiting for their write, in order: (channel, offset, value, retain).
        let mut pending: Vec<(u8, u64, Value, bool)> = Vec::new();
        let mut now = 0u64;
        let mut crashes = 0;
        for op in ops {
            now += 1;
            match op {
                Op::Append(c, retain) => {
                    let value = json!({"t": now});
                    let offset = store.append_json(ms(now), &ch(names[c as usize]), Arc::new(value.clone()), retain);
                    let Appended::Pending(offset) = offset else { panic!("durable appends wait") };
                    pending.push((c, offset, value, retain));
                }
                Op::Drive => {
                    let done = disk.drive(&mut store, ms(now));
                    for (c, offset, value, retain) in pending.drain(..done) {
                        let events = model.events.entry(c).or_default();
                        prop_assert_eq!(events.last().map_or(0, |e| e.0) + 1, offset);
                        events.push((offset, value.clone()));
                        if retain {
                            model.state.insert(c, value);
                        }
                    }
                }
                Op::Fail => {
                    if let Some(w) = store.poll_write() {
                        let dropped = store.handle_write_failed(ms(now), w.batch);
                        prop_assert_eq!(dropped, pending.len());
                        pending.clear();
                    }
                }
                Op::Cursor(c, o) => store.set_cursor("r", &ch(names[c as usize]), u64::from(o)),
                Op::Crash(keep) => {
                    crashes += 1;
                    // A write in flight may have reached the file in part.
                    if let Some(w) = store.poll_write() {
                        let name = format!("{:016x}.log", w.segment);
                        let part = &w.bytes[..(keep as usize).min(w.bytes.len())];
                        disk.files.entry(name).or_default().0.extend_from_slice(part);
                    }
                    disk.power_loss(keep as usize);
                    let (restored, report) = disk.restore(config(), ms(now));
                    // Only files that never held a whole record (the first segment torn in its creation) leave
                    // no epoch to keep.
                    prop_assert_eq!(report.epoch_changed, report.records == 0, "a torn tail keeps the epoch");
                    if report.epoch_changed {
                        prop_assert!(model.events.is_empty(), "an epoch lost with acknowledged events");
                    }
                    survivors(&restored, ms(now), &names, &mut model, &mut pending)?;
                    store = restored;
                }
            }
            prop_assert_eq!(store.check(), Ok(()));
        }
        prop_assert!(crashes <= 120);
        let done = disk.drive(&mut store, ms(now + 1));
        prop_assert_eq!(done, pending.len());
        for (c, offset, value, retain) in pending.drain(..) {
            model.events.entry(c).or_default().push((offset, value.clone()));
            if retain {
                model.state.insert(c, value);
            }
        }
        let (restored, _) = disk.restore(config(), ms(now + 2));
        for (i, name) in names.iter().enumerate() {
            let events = model.events.get(&(i as u8)).cloned().unwrap_or_default();
            let head = events.last().map_or(0, |e| e.0);
            let tail: Vec<(u64, Value)> = events[events.len().saturating_sub(4)..].to_vec();
            prop_assert_eq!(restored.offset(&ch(name)), head);
            prop_assert_eq!(kept(&restored, ms(now + 2), name), tail);
            prop_assert_eq!(restored.state(&ch(name)).state, model.state.get(&(i as u8)).cloned());
        }
    }
}

#[test]
fn a_smaller_budget_at_restart_applies_with_the_first_write() {
    let mut c = config();
    c.history_size = 1000;
    let mut store = DurableStore::new(c.clone(), String::from("E"));
    let mut disk = Disk::default();
    for n in 1..=100u64 {
        store.append_json(
            ms(n),
            &ch("a"),
            Arc::new(json!({"n": n, "pad": "0123456789"})),
            false,
        );
    }
    disk.drive(&mut store, ms(100));
    c.max_disk_bytes = Some(1500);
    let (mut restored, _) = disk.restore(c, ms(101));
    assert_eq!(
        kept(&restored, ms(101), "a").len(),
        100,
        "nothing dropped before the first write"
    );
    disk.drive(&mut restored, ms(101));
    assert!(restored.live_bytes() <= 500, "{}", restored.live_bytes());
    assert_eq!(restored.check(), Ok(()));
    assert_eq!(restored.offset(&ch("a")), 100);
}

#[test]
fn a_failed_segment_creation_waits_for_something_to_keep() {
    let mut store = DurableStore::new(config(), String::from("E"));
    let first = store
        .poll_write()
        .expect("the new store writes its first segment");
    assert!(first.create);
    assert_eq!(store.handle_write_failed(ms(1), first.batch), 0);
    assert_eq!(store.poll_write(), None, "an empty creation is not retried");
    store.append_json(ms(2), &ch("a"), Arc::new(json!(1)), false);
    let retry = store.poll_write().expect("a publish brings the write back");
    assert!(retry.create && retry.segment == first.segment);
    assert_eq!(store.handle_written(ms(3), retry.batch), 1);
}

#[test]
fn a_readers_positions_list_written_and_pending_ones() {
    let mut store = DurableStore::new(config(), String::from("E"));
    let mut disk = Disk::default();
    disk.drive(&mut store, ms(0));
    store.set_cursor("hook", &ch("b"), 3);
    store.set_cursor("other", &ch("a"), 9);
    disk.drive(&mut store, ms(1));
    store.set_cursor("hook", &ch("a"), 1);
    store.set_cursor("hook", &ch("b"), 4);
    assert_eq!(store.cursors("hook"), vec![(ch("a"), 1), (ch("b"), 4)]);
    disk.drive(&mut store, ms(2));
    assert_eq!(store.cursors("hook"), vec![(ch("a"), 1), (ch("b"), 4)]);
    assert_eq!(store.cursors("other"), vec![(ch("a"), 9)]);
}

/// The memory budget holds over the durable store's reads, with and without a disk budget, and a restart (with
/// the same budget, or a smaller one) reads back no more than it allows.
#[test]
fn the_memory_budget_bounds_what_is_served_and_what_is_restored() {
    for disk_budget in [None, Some(20_000)] {
        let mut c = config();
        c.history_size = 1000;
        c.history_bytes = 300;
        c.history_total_bytes = 500;
        c.max_disk_bytes = disk_budget;
        let mut store = DurableStore::new(c.clone(), String::from("E"));
        let mut disk = Disk::default();
        for n in 1..=60u64 {
            let name = ["a", "b", "c"][(n % 3) as usize];
            let pad = "x".repeat((n % 7) as usize * 10);
            store.append_json(
                ms(n),
                &ch(name),
                Arc::new(json!({"n": n, "pad": pad})),
                n == 1,
            );
            disk.drive(&mut store, ms(n));
            assert_eq!(store.check(), Ok(()));
            let stats = store.stats();
            assert!(stats.bytes <= 500, "{} bytes kept", stats.bytes);
        }
        let served: Vec<_> = ["a", "b", "c"]
            .map(|name| kept(&store, ms(61), name))
            .into();
        assert!(served.iter().all(|events| !events.is_empty()));
        assert!(
            served.iter().map(Vec::len).sum::<usize>() < 60,
            "the budget trimmed"
        );
        assert_eq!(
            store.state(&ch("b")).state,
            Some(json!({"n": 1, "pad": "xxxxxxxxxx"}))
        );
        let (restored, _) = disk.restore(c.clone(), ms(61));
        assert_eq!(restored.check(), Ok(()));
        let again: Vec<_> = ["a", "b", "c"]
            .map(|name| kept(&restored, ms(61), name))
            .into();
        assert_eq!(again, served, "disk budget {disk_budget:?}");
        assert_eq!(restored.stats(), store.stats());
        assert_eq!(restored.state(&ch("b")).state, store.state(&ch("b")).state);
        c.history_total_bytes = 200;
        let (smaller, _) = disk.restore(c, ms(61));
        assert_eq!(smaller.check(), Ok(()));
        assert!(smaller.stats().bytes <= 200);
        let newest = ["a", "b", "c"].map(|name| kept(&smaller, ms(61), name).last().cloned());
        assert!(
            newest.iter().flatten().any(|(_, e)| e["n"] == 60),
            "the newest event is kept: {newest:?}"
        );
    }
}

/// A file of format version 1: its header, its `Epoch` record (the epoch of every channel in it), then `records`.
fn v1_file(epoch: &str, records: &[Record]) -> Vec<u8> {
    let mut file = header().to_vec();
    file[8..12].copy_from_slice(&1u32.to_le_bytes());
    Record::Epoch(String::from(epoch)).encode(&mut file);
    for record in records {
        record.encode(&mut file);
    }
    file
}

fn event(channel: &str, offset: u64, retain: bool) -> Record {
    Record::Event {
        channel: ch(channel),
        offset,
        at: ms(offset),
        retain,
        event: Arc::new(json!(offset)),
    }
}

#[test]
fn files_of_format_version_1_restore_with_their_epoch_for_every_channel() {
    let mut disk = Disk::default();
    // A version 1 snapshot (its `Channel` records carry no epoch) and a version 1 segment after it.
    let mut snapshot = v1_file("OLD", &[event("a", 1, false), event("a", 2, true)]);
    Record::Channel {
        channel: ch("a"),
        head: 2,
        epoch: None,
    }
    .encode(&mut snapshot);
    Record::SnapshotEnd.encode(&mut snapshot);
    disk.files.insert(
        format!("{:016x}.snap", 1),
        (snapshot.clone(), snapshot.len()),
    );
    let segment = v1_file("OLD", &[event("a", 3, false), event("b", 1, true)]);
    disk.files
        .insert(format!("{:016x}.log", 2), (segment.clone(), segment.len()));
    let (mut store, report) = disk.restore(config(), ms(10));
    assert!(!report.epoch_changed);
    assert_eq!((report.channels, report.events), (2, 4));
    for name in ["a", "b"] {
        assert_eq!(store.epoch(&ch(name)), "OLD", "{name}");
    }
    let at = StreamPosition {
        epoch: String::from("OLD"),
        offset: 1,
    };
    assert_eq!(
        store.replay(ms(10), &ch("a"), &at).map(|v| v.len()),
        Some(2),
        "a position from before the upgrade still recovers"
    );
    // The store writes version 2 from here on, and a restart reads both.
    store.append_json(ms(11), &ch("a"), Arc::new(json!(4)), false);
    store.append_json(ms(11), &ch("c"), Arc::new(json!(1)), false);
    disk.drive(&mut store, ms(11));
    let c_epoch = String::from(store.epoch(&ch("c")));
    assert_ne!(c_epoch, "OLD", "a new channel gets an epoch of its own");
    let (again, report) = disk.restore(config(), ms(12));
    assert!(!report.epoch_changed);
    assert_eq!(again.epoch(&ch("a")), "OLD");
    assert_eq!(again.epoch(&ch("c")), c_epoch);
    assert_eq!(again.offset(&ch("a")), 4);
    assert_eq!(again.check(), Ok(()));
}

#[test]
fn a_forgotten_channel_stays_forgotten_across_a_restart_and_its_next_log_has_a_new_epoch() {
    let c = DurableConfig::new(100, Duration::from_millis(50));
    let mut store = DurableStore::new(c.clone(), String::from("E"));
    let mut disk = Disk::default();
    for n in 1..=3u64 {
        store.append_json(ms(n), &ch("gone"), Arc::new(json!(n)), false);
        store.append_json(ms(n), &ch("kept"), Arc::new(json!(n)), n == 2);
    }
    disk.drive(&mut store, ms(3));
    let gone_epoch = String::from(store.epoch(&ch("gone")));
    let kept_epoch = String::from(store.epoch(&ch("kept")));
    assert_ne!(gone_epoch, kept_epoch, "every log has its own epoch");
    // History expires: `gone` keeps nothing and is forgotten (a `Forget` record); `kept` keeps its state.
    store.expire(ms(100));
    disk.drive(&mut store, ms(100));
    assert_eq!(store.stats().channels, 1);
    // Under a longer history TTL the old events would still be in time: only the record keeps `gone` away.
    let longer = DurableConfig::new(100, Duration::from_secs(3600));
    let (restored, _) = disk.clone().restore(longer.clone(), ms(101));
    assert!(
        !restored.holds(&ch("gone")),
        "a forgotten log does not come back"
    );
    assert_eq!(restored.epoch(&ch("kept")), kept_epoch);
    assert_eq!(restored.state(&ch("kept")).state, Some(json!(2)));
    // The name's next log is a new one, in a new epoch, which a restart keeps.
    store.append_json(ms(102), &ch("gone"), Arc::new(json!("again")), false);
    disk.drive(&mut store, ms(102));
    let new_epoch = String::from(store.epoch(&ch("gone")));
    assert_ne!(new_epoch, gone_epoch);
    assert_eq!(store.offset(&ch("gone")), 1);
    let (restored, report) = disk.clone().restore(longer, ms(103));
    assert!(!report.epoch_changed);
    assert_eq!(restored.epoch(&ch("gone")), new_epoch);
    assert_eq!(kept(&restored, ms(103), "gone"), vec![(1, json!("again"))]);
    // So does a snapshot, whose `Channel` records carry each log's epoch.
    let mut snapped = c.clone();
    snapped.min_log_bytes = 1;
    let (mut again, _) = disk.restore(snapped.clone(), ms(104));
    again.append_json(ms(104), &ch("kept"), Arc::new(json!(4)), false);
    disk.drive(&mut again, ms(104));
    assert!(disk.snapshots > 0, "a snapshot was taken");
    let (last, _) = disk.restore(snapped, ms(105));
    assert_eq!(last.epoch(&ch("gone")), new_epoch);
    assert_eq!(last.epoch(&ch("kept")), kept_epoch);
    assert_eq!(last.check(), Ok(()));
}

fn idem(k: &str) -> IdempotencyKey {
    IdempotencyKey::new(k).expect("valid")
}

impl Disk {
    /// [`drive`](Disk::drive) for a hub over the store: every write and snapshot the hub hands out is done and
    /// reported, the snapshot with the keys the hub added to it.
    fn drive_hub(&mut self, hub: &mut Hub, now: Timestamp) {
        loop {
            match hub.poll_output() {
                HubOutput::Persist(write) => {
                    let name = format!("{:016x}.log", write.segment);
                    let file = self.files.entry(name).or_default();
                    file.0.extend_from_slice(&write.bytes);
                    if write.sync {
                        file.1 = file.0.len();
                    }
                    hub.handle_store_written(now, write.batch);
                }
                HubOutput::Snapshot(job) => {
                    let mut bytes = Vec::new();
                    let len = job
                        .write_to(|chunk| {
                            bytes.extend_from_slice(chunk);
                            Ok::<(), ()>(())
                        })
                        .expect("writing to memory");
                    self.files.retain(|name, _| match parse(name) {
                        Some((id, _)) => id > job.covers,
                        None => true,
                    });
                    let synced = bytes.len();
                    self.files
                        .insert(format!("{:016x}.snap", job.covers), (bytes, synced));
                    self.snapshots += 1;
                    hub.handle_snapshot_written(now, job.covers, len);
                }
                HubOutput::Timeout(_) => return,
                _ => {}
            }
        }
    }
}

fn hub_over(store: DurableStore) -> Hub {
    Hub::with_store(HubConfig::default(), alloc::boxed::Box::new(store))
}

#[test]
fn a_key_is_written_before_its_events_in_their_write_and_read_back_with_its_epoch() {
    for fsync in [FsyncPolicy::Always, FsyncPolicy::Batch] {
        let mut c = config();
        c.fsync = fsync;
        let mut store = DurableStore::new(c.clone(), String::from("E"));
        let mut disk = Disk::default();
        store.key_next(ms(1), &ch("a"), &idem("batch"), 3);
        store.group_next(3);
        for n in 1..=3u64 {
            store.append_json(ms(1), &ch("a"), Arc::new(json!(n)), false);
        }
        store.key_next(ms(2), &ch("a"), &idem("one"), 1);
        store.append_json(ms(2), &ch("a"), Arc::new(json!(4)), false);
        // Under `always` a publish is one write: its events and its key, nothing of the next publish.
        let first = store.poll_write().expect("a write");
        let records: Vec<Record> = RecordReader::new(&first.bytes).map(|(r, _)| r).collect();
        let kinds: Vec<&str> = records
            .iter()
            .map(|r| match r {
                Record::Channel { .. } => "channel",
                Record::Event { .. } => "event",
                Record::Key(_) => "key",
                _ => "other",
            })
            .collect();
        let expected: &[&str] = match fsync {
            FsyncPolicy::Always => &["channel", "key", "event", "event", "event"],
            _ => &["channel", "key", "event", "event", "event", "key", "event"],
        };
        assert_eq!(kinds, expected, "{fsync:?}");
        let appends = if fsync == FsyncPolicy::Always { 3 } else { 4 };
        assert_eq!(
            store.handle_written(ms(3), first.batch),
            appends,
            "{fsync:?}"
        );
        disk.files.insert(
            format!("{:016x}.log", first.segment),
            (first.bytes.clone(), first.bytes.len()),
        );
        disk.drive(&mut store, ms(3));
        let (mut restored, report) = disk.restore(c, ms(4));
        assert_eq!(report.keys, 2);
        let mut keys = restored.take_restored_keys();
        keys.sort_by_key(|k| k.first);
        let got: Vec<(&str, u64, u64, &str, Timestamp)> = keys
            .iter()
            .map(|k| (k.key.as_str(), k.first, k.last, k.epoch.as_str(), k.at))
            .collect();
        let epoch = store.epoch(&ch("a"));
        assert_eq!(
            got,
            [("batch", 1, 3, epoch, ms(1)), ("one", 4, 4, epoch, ms(2))],
            "{fsync:?}"
        );
        assert!(restored.take_restored_keys().is_empty(), "taken once");
    }
}

#[test]
fn a_key_read_back_always_has_every_event_it_names_whatever_the_torn_tail() {
    let mut c = config();
    c.fsync = FsyncPolicy::Off;
    c.segment_bytes = 1 << 20;
    let mut store = DurableStore::new(c.clone(), String::from("E"));
    let mut disk = Disk::default();
    // The segment's creation is synced; the publish after it is not.
    store.append_json(ms(1), &ch("a"), Arc::new(json!(0)), false);
    disk.drive(&mut store, ms(1));
    store.key_next(ms(2), &ch("a"), &idem("k"), 2);
    store.group_next(2);
    for n in 1..=2u64 {
        store.append_json(ms(2), &ch("a"), Arc::new(json!({ "n": n })), false);
    }
    disk.drive(&mut store, ms(2));
    let (bytes, synced) = disk.files.values().next().cloned().expect("one segment");
    assert!(bytes.len() > synced, "the publish is not synced");
    let mut found = 0;
    for keep in 0..=(bytes.len() - synced) {
        let mut torn = disk.clone();
        torn.power_loss(keep);
        let (mut restored, _) = torn.restore(c.clone(), ms(3));
        let keys = restored.take_restored_keys();
        // All or nothing: a publish the crash tore is neither half kept nor kept without its key (a retry of it,
        // never acknowledged, would then land twice).
        let offset = restored.offset(&ch("a"));
        match keys.first() {
            Some(key) => {
                found += 1;
                assert_eq!((key.first, key.last), (2, 3));
                assert_eq!(offset, 3, "kept {keep}: the key's events");
            }
            None => assert_eq!(offset, 1, "kept {keep}: events without their key"),
        }
        // The cut file is what the next restart reads: the same again.
        let (mut again, _) = torn.restore(c.clone(), ms(4));
        assert_eq!(again.offset(&ch("a")), offset, "kept {keep}");
        assert_eq!(again.take_restored_keys().len(), keys.len(), "kept {keep}");
    }
    assert_eq!(found, 1, "only the whole write brings the key back");
}

#[test]
fn a_key_is_not_read_back_for_a_log_forgotten_after_it_or_past_its_head() {
    let file = |records: &[Record]| {
        let mut file = header().to_vec();
        for r in records {
            r.encode(&mut file);
        }
        file
    };
    let channel = |epoch: &str| Record::Channel {
        channel: ch("a"),
        head: 0,
        epoch: Some(String::from(epoch)),
    };
    let key = |k: &str, epoch: &str, last: u64| {
        Record::Key(KeptKey {
            channel: ch("a"),
            key: idem(k),
            epoch: String::from(epoch),
            first: 1,
            last,
            at: ms(1),
        })
    };
    let segment = file(&[
        channel("OLD"),
        key("old-log", "OLD", 1),
        event("a", 1, false),
        Record::Forget { channel: ch("a") },
        channel("NEW"),
        key("new-log", "NEW", 1),
        event("a", 1, false),
        key("other-epoch", "OLD", 1),
    ]);
    let mut disk = Disk::default();
    disk.files
        .insert(format!("{:016x}.log", 1), (segment.clone(), segment.len()));
    let (mut restored, report) = disk.restore(config(), ms(2));
    assert!(!report.epoch_changed);
    let keys: Vec<String> = restored
        .take_restored_keys()
        .into_iter()
        .map(|k| String::from(k.key.as_str()))
        .collect();
    assert_eq!(keys, ["new-log"]);
    // Damage changes every epoch: no key answers for offsets that may name other events.
    let mut damaged = segment.clone();
    let last = damaged.len() - 1;
    damaged[last - 30] ^= 0xff;
    damaged.extend_from_slice(&segment[HEADER_LEN..]);
    disk.files
        .insert(format!("{:016x}.log", 1), (damaged.clone(), damaged.len()));
    let (mut restored, report) = disk.restore(config(), ms(2));
    assert!(report.epoch_changed);
    assert!(restored.take_restored_keys().is_empty());
}

#[test]
fn a_retry_after_a_restart_is_a_duplicate_even_after_snapshots_removed_the_segments_with_its_key() {
    let c = config();
    let mut hub = hub_over(DurableStore::new(c.clone(), String::from("E")));
    let mut disk = Disk::default();
    let published = hub
        .publish_keyed(ms(1), &ch("a"), json!("one"), false, Some(idem("k1")))
        .expect("valid");
    assert!(matches!(published, Publish::Pending(_)));
    let batch = vec![json!(1), json!(2), json!(3)];
    hub.publish_batch_keyed(ms(1), &ch("b"), batch.clone(), false, Some(idem("k2")))
        .expect("valid");
    disk.drive_hub(&mut hub, ms(1));
    // Enough other publishes for snapshots to replace the segments that held the keys' records.
    for n in 0..60u64 {
        hub.publish(ms(2), &ch("c"), json!({ "n": n }), false)
            .expect("valid");
        disk.drive_hub(&mut hub, ms(2));
    }
    assert!(disk.snapshots >= 2, "snapshots {}", disk.snapshots);
    let first_segment = format!("{:016x}.log", 1);
    assert!(!disk.files.contains_key(&first_segment), "rolled away");

    let (restored, report) = disk.restore(c.clone(), ms(3));
    assert_eq!(report.keys, 2);
    let mut hub = hub_over(restored);
    assert_eq!(
        hub.publish_keyed(ms(3), &ch("a"), json!("one"), false, Some(idem("k1"))),
        Ok(Publish::Duplicate {
            first_offset: 1,
            last_offset: 1
        })
    );
    assert_eq!(
        hub.publish_batch_keyed(ms(3), &ch("b"), batch, false, Some(idem("k2"))),
        Ok(Publish::Duplicate {
            first_offset: 1,
            last_offset: 3
        })
    );
    assert_eq!(hub.stats().dedupe_keys, 2);

    // The window runs from the original publish, across the restart.
    let late = ms(1) + HubConfig::default().dedupe_window;
    let (restored, _) = disk.restore(c, late);
    let mut hub = hub_over(restored);
    assert!(matches!(
        hub.publish_keyed(late, &ch("a"), json!("one"), false, Some(idem("k1"))),
        Ok(Publish::Pending(_))
    ));
}
