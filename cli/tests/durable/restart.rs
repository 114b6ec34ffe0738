//! Retained state and recovery across restarts.

use serde_json::json;

use crate::support::data_dir::TempDir;
use crate::support::native::Native;
use crate::support::rest::{Http, state};
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
