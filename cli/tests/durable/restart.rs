//! Retained state and recovery across restarts.

use serde_json::json;

use crate::support::data_dir::TempDir;
use crate::support::native::Native;
use crate::support::rest::{Http, history, state};
use crate::support::run;
use crate::{publish_at, start};

#[test]
fn a_restart_keeps_retained_state_and_a_resubscribing_client_recovers() {
    let dir = TempDir::new("state");
    let channel = "agent.run";
    let mut server = start("127.0.0.1:0", &dir, &[]);
    let mut http = Http::new(&server.addr);
    publish_at(&mut http, channel, &json!({"step": 1}), true, 1);
    publish_at(&mut http, channel, &json!({"log": "a"}), false, 2);

    let mut client = Native::connect(&server.addr);
    let subscribed = client.request("subscribe", json!({"channel": channel}));
    assert_eq!(subscribed["type"], "subscribe_res", "{subscribed}");
    let first_epoch = subscribed["data"]["epoch"]
        .as_str()
        .expect("an epoch")
        .to_owned();
    assert_eq!(subscribed["data"]["offset"], 2);
    publish_at(&mut http, channel, &json!({"step": 3}), true, 3);
    let seen = client.event();
    assert_eq!(seen["offset"], 3, "{seen}");
    assert_eq!(seen["event"], json!({"step": 3}));
    client.close();
    // Missed by the client.
    publish_at(&mut http, channel, &json!({"log": "b"}), false, 4);
    publish_at(&mut http, channel, &json!({"log": "c"}), false, 5);

    // A graceful stop, then a crash: both restarts keep the state and let the client recover.
    for (round, hard) in [(0, false), (1, true)] {
        if hard {
            server.proc.kill_hard();
        } else {
            server.proc.signal("TERM");
            assert!(server.proc.wait().success());
        }
        server = start("127.0.0.1:0", &dir, &[]);
        let rest_state = state(&server.addr, channel);
        assert_eq!(
            rest_state,
            json!({"channel": channel, "epoch": first_epoch, "offset": 5 + round, "state": {"step": 3}}),
            "restart {round}"
        );

        let mut client = Native::connect(&server.addr);
        let got = client.request("get_state", json!({"channel": channel}));
        assert_eq!(got["type"], "get_state_res", "{got}");
        assert_eq!(got["data"], rest_state);
        let resumed = client.request(
            "subscribe",
            json!({"channel": channel, "since": {"epoch": first_epoch, "offset": 3}}),
        );
        assert_eq!(resumed["type"], "subscribe_res", "{resumed}");
        assert_eq!(resumed["data"]["recovered"], true, "{resumed}");
        assert_eq!(resumed["data"]["epoch"], first_epoch.as_str());
        let mut missed = vec![json!({"log": "b"}), json!({"log": "c"})];
        if round == 1 {
            missed.push(json!({"live": 0}));
        }
        for (i, event) in missed.iter().enumerate() {
            let got = client.event();
            assert_eq!(got["epoch"], first_epoch.as_str(), "{got}");
            assert_eq!(got["offset"], 4 + i as u64, "{got}");
            assert_eq!(&got["event"], event, "{got}");
        }
        // Live events follow the replay.
        let mut http = Http::new(&server.addr);
        let next = 6 + round;
        publish_at(&mut http, channel, &json!({"live": round}), false, next);
        let live = client.event();
        assert_eq!(live["offset"], next, "{live}");
        assert_eq!(live["event"], json!({"live": round}));
        client.close();
    }
}

/// A publish retried after the server crashed, under the key of its first attempt, lands once: `pub
/// --idempotency-key`, a REST batch with a key, and a native publish with a key are each answered with the
/// original offsets and `duplicate`, after a SIGKILL and after a clean stop, and history holds each event once.
#[test]
fn a_publish_retried_after_a_crash_under_its_key_lands_once() {
    let dir = TempDir::new("keys");
    let channel = "jobs";
    let path = format!("/api/v1/channels/{channel}/events");
    let batch = json!({"events": [{"n": 2}, {"n": 3}, {"n": 4}], "idempotency_key": "batch-1"});
    let publish_all = |server: &crate::DataServer| {
        let url = server.ws_url();
        let cli = run(&[
            "pub",
            &url,
            channel,
            r#"{"n":1}"#,
            "--idempotency-key",
            "job-7",
        ]);
        assert_eq!(cli.code, Some(0), "{}", cli.stderr);
        let mut http = Http::new(&server.addr);
        let rest = http.send("POST", &path, Some(&batch)).expect("REST batch");
        let mut client = Native::connect(&server.addr);
        let native = client.request(
            "publish",
            json!({"channel": channel, "event": {"n": 5}, "idempotency_key": "native-1"}),
        );
        client.close();
        (cli, rest, native)
    };

    let mut server = start("127.0.0.1:0", &dir, &[]);
    let (cli, rest, native) = publish_all(&server);
    assert_eq!(cli.stdout, ["1"]);
    assert!(!cli.stderr.contains("duplicate"), "{}", cli.stderr);
    assert_eq!(rest.status, 201, "{:?}", rest.body);
    assert_eq!(
        (&rest.body["first_offset"], &rest.body["last_offset"]),
        (&json!(2), &json!(4))
    );
    assert_eq!(native["data"], json!({"channel": channel, "offset": 5}));

    for hard in [true, false] {
        if hard {
            server.proc.kill_hard();
        } else {
            server.proc.signal("TERM");
            assert!(server.proc.wait().success());
        }
        server = start("127.0.0.1:0", &dir, &[]);
        let (cli, rest, native) = publish_all(&server);
        assert_eq!(cli.stdout, ["1"], "hard {hard}: {}", cli.stderr);
        assert!(
            cli.stderr.contains("duplicate"),
            "hard {hard}: {}",
            cli.stderr
        );
        assert_eq!(rest.status, 200, "hard {hard}: {:?}", rest.body);
        assert_eq!(
            rest.body,
            json!({"channel": channel, "first_offset": 2, "last_offset": 4, "duplicate": true}),
            "hard {hard}"
        );
        assert_eq!(
            native["data"],
            json!({"channel": channel, "offset": 5, "duplicate": true}),
            "hard {hard}"
        );
        let (_, events) = history(&server.addr, channel);
        let offsets: Vec<u64> = events.iter().map(|(offset, _)| *offset).collect();
        assert_eq!(offsets, [1, 2, 3, 4, 5], "hard {hard}: each event once");
    }
    server.proc.signal("TERM");
    assert!(server.proc.wait().success());
}
