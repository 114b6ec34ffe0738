//! Data directories `serve` refuses with exit 2: one in use, one written by a newer format.

use serde_json::json;

use crate::support::data_dir::{TempDir, header};
use crate::support::rest::Http;
use crate::support::{run, run_with_env};
use crate::{publish_at, serve_args, start};

#[test]
fn a_data_dir_in_use_is_refused_with_exit_2() {
    let dir = TempDir::new("in-use");
    let first = start("127.0.0.1:0", &dir, &[]);
    // Named by the flag, and by the environment variable.
    let by_flag = run(&serve_args("127.0.0.1:0", &dir, &[]));
    let by_env = run_with_env(
        &["serve", "--bind", "127.0.0.1:0"],
        &[("SWITCHBOARD_DATA_DIR", dir.arg())],
    );
    for second in [by_flag, by_env] {
        assert_eq!(second.code, Some(2), "stderr: {}", second.stderr);
        assert!(second.stdout.is_empty(), "{:?}", second.stdout);
        let refusals = second
            .stderr
            .lines()
            .filter(|line| line.contains("in use") && line.contains(dir.arg()))
            .count();
        assert_eq!(
            refusals, 1,
            "one line says the directory is in use: {}",
            second.stderr
        );
    }
    // The first server is unharmed.
    let mut http = Http::new(&first.addr);
    publish_at(&mut http, "still", &json!({"n": 1}), false, 1);
}

#[test]
fn a_data_dir_from_a_newer_format_is_refused_with_exit_2() {
    let dir = TempDir::new("newer");
    let mut file = header(99).to_vec();
    // A record after the header, so the refusal is about the version and not about an empty file.
    file.extend_from_slice(&[0u8; 8]);
    std::fs::write(dir.path().join(format!("{:016x}.log", 1)), &file).expect("write a segment");
    let refused = run(&serve_args("127.0.0.1:0", &dir, &[]));
    assert_eq!(refused.code, Some(2), "stderr: {}", refused.stderr);
    assert!(refused.stdout.is_empty(), "{:?}", refused.stdout);
    let refusals = refused
        .stderr
        .lines()
        .filter(|line| line.contains("version 99"))
        .count();
    assert_eq!(
        refusals, 1,
        "one line names the version: {}",
        refused.stderr
    );
    // Nothing was rewritten.
    assert_eq!(
        std::fs::read(dir.path().join(format!("{:016x}.log", 1))).unwrap(),
        file
    );
}
