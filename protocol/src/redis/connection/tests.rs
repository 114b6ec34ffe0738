//! Transcripts: the exact outputs of a connection for each scenario.

use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use super::*;
use crate::backoff::Jitter;

fn t(ms: u64) -> Timestamp {
    Timestamp::from_micros(1_000_000_000 + ms * 1000)
}

fn config(mode: Mode, password: Option<&str>) -> ConnectionConfig {
    let url = RedisUrl::parse("redis://127.0.0.1:6379/0").unwrap();
    let mut config = ConnectionConfig::new(&url, mode);
    config.password = password.map(Into::into);
    // No jitter: the transcripts name exact retry times.
    config.backoff.jitter = Jitter::None;
    config
}

fn drain(conn: &mut RedisConnection) -> Vec<Output> {
    let mut outputs = Vec::new();
    loop {
        let output = conn.poll_output();
        let last = matches!(output, Output::Timeout(_));
        outputs.push(output);
        if last {
            return outputs;
        }
    }
}

fn bytes(commands: &[Command]) -> Vec<u8> {
    let mut out = Vec::new();
    for command in commands {
        command.encode_into(&mut out);
    }
    out
}

fn reply(id: u64, result: Result<Reply, RedisError>) -> Output {
    Output::Event(Event::Reply {
        id: RequestId(id),
        result,
    })
}

/// Dials at `t(0)`, connects, and is up (no handshake).
fn up(mode: Mode) -> RedisConnection {
    let mut conn = RedisConnection::new(config(mode, None), t(0), Rng::from_seed(1));
    assert_eq!(drain(&mut conn), vec![Output::Timeout(t(0))]);
    conn.handle_timeout(t(0));
    assert_eq!(
        drain(&mut conn),
        vec![Output::Connect, Output::Timeout(t(5000))]
    );
    conn.handle_connected(t(0));
    assert_eq!(
        drain(&mut conn),
        vec![Output::Event(Event::Up), Output::Timeout(t(2000))]
    );
    conn
}

#[test]
fn handshake_runs_before_queued_commands_and_pipelines_them() {
    let mut conn =
        RedisConnection::new(config(Mode::Commands, Some("pw")), t(0), Rng::from_seed(1));
    let a = conn.request(t(0), Command::new("INCR").arg("a"));
    let b = conn.request(t(0), Command::new("GET").arg("b"));
    assert_eq!((a, b), (RequestId(0), RequestId(1)));
    assert_eq!(drain(&mut conn), vec![Output::Timeout(t(0))]);
    conn.handle_timeout(t(0));
    assert_eq!(
        drain(&mut conn),
        vec![Output::Connect, Output::Timeout(t(5000))]
    );
    conn.handle_connected(t(10));
    assert_eq!(
        drain(&mut conn),
        vec![
            Output::Transmit(bytes(&[Command::new("AUTH").arg("pw")])),
            // The queued commands' wait for a connection ends first.
            Output::Timeout(t(5000)),
        ]
    );
    // AUTH's answer: up, and both queued commands go out in one write.
    conn.handle_input(t(20), b"+OK\r\n");
    assert_eq!(
        drain(&mut conn),
        vec![
            Output::Event(Event::Up),
            Output::Transmit(bytes(&[
                Command::new("INCR").arg("a"),
                Command::new("GET").arg("b")
            ])),
            Output::Timeout(t(5020)),
        ]
    );
    // Replies are matched by position, across reads that split them.
    conn.handle_input(t(30), b":1\r\n$");
    assert_eq!(
        drain(&mut conn),
        vec![reply(0, Ok(Reply::Integer(1))), Output::Timeout(t(5030))]
    );
    conn.handle_input(t(40), b"-1\r\n");
    assert_eq!(
        drain(&mut conn),
        vec![reply(1, Ok(Reply::Nil)), Output::Timeout(t(2040))]
    );
}

#[test]
fn a_refused_login_is_retried_after_the_backoff() {
    let mut conn =
        RedisConnection::new(config(Mode::Commands, Some("bad")), t(0), Rng::from_seed(1));
    conn.handle_timeout(t(0));
    conn.handle_connected(t(0));
    drain(&mut conn);
    conn.handle_input(t(5), b"-WRONGPASS invalid username-password pair\r\n");
    assert_eq!(
        drain(&mut conn),
        vec![
            Output::Close,
            Output::Event(Event::Down(DownReason::Handshake(
                "WRONGPASS invalid username-password pair".into()
            ))),
            Output::Timeout(t(105)),
        ]
    );
    conn.handle_timeout(t(105));
    assert_eq!(
        drain(&mut conn),
        vec![Output::Connect, Output::Timeout(t(5105))]
    );
    conn.handle_connect_failed(t(110), "refused");
    assert_eq!(
        drain(&mut conn),
        vec![
            Output::Close,
            Output::Event(Event::Down(DownReason::ConnectFailed("refused".into()))),
            Output::Timeout(t(310)),
        ]
    );
}

#[test]
fn a_drop_loses_written_commands_and_keeps_unwritten_ones() {
    let mut conn = up(Mode::Commands);
    conn.request(t(100), Command::new("INCR").arg("x"));
    drain(&mut conn);
    conn.handle_disconnected(t(200), "reset by peer");
    let queued = conn.request(t(200), Command::new("GET").arg("x"));
    assert_eq!(
        drain(&mut conn),
        vec![
            reply(0, Err(RedisError::Lost)),
            Output::Close,
            Output::Event(Event::Down(DownReason::Closed("reset by peer".into()))),
            Output::Timeout(t(300)),
        ]
    );
    conn.handle_timeout(t(300));
    drain(&mut conn);
    conn.handle_connected(t(310));
    assert_eq!(
        drain(&mut conn),
        vec![
            Output::Event(Event::Up),
            Output::Transmit(bytes(&[Command::new("GET").arg("x")])),
            Output::Timeout(t(5310)),
        ]
    );
    conn.handle_input(t(320), b"$1\r\n1\r\n");
    assert_eq!(
        drain(&mut conn)[0],
        reply(queued.0, Ok(Reply::Bulk(b"1".to_vec())))
    );
}

#[test]
fn waiting_is_bounded_in_time_and_number() {
    let mut cfg = config(Mode::Commands, None);
    cfg.max_waiting = 1;
    let mut conn = RedisConnection::new(cfg, t(0), Rng::from_seed(1));
    conn.request(t(0), Command::new("PING"));
    conn.request(t(0), Command::new("PING"));
    assert_eq!(
        drain(&mut conn),
        vec![reply(1, Err(RedisError::Backlog(1))), Output::Timeout(t(0))]
    );
    conn.handle_timeout(t(0));
    assert_eq!(
        drain(&mut conn),
        vec![Output::Connect, Output::Timeout(t(5000))]
    );
    // The dial hangs: at 5 s the command gives up waiting and the dial is abandoned.
    conn.handle_timeout(t(5000));
    assert_eq!(
        drain(&mut conn),
        vec![
            reply(0, Err(RedisError::Unavailable(Duration::from_secs(5)))),
            Output::Close,
            Output::Event(Event::Down(DownReason::ConnectTimeout(
                Duration::from_secs(5)
            ))),
            Output::Timeout(t(5100)),
        ]
    );
}

#[test]
fn a_silent_server_is_declared_dead_and_an_idle_one_is_pinged() {
    let mut conn = up(Mode::Commands);
    conn.handle_timeout(t(2000));
    assert_eq!(
        drain(&mut conn),
        vec![
            Output::Transmit(bytes(&[Command::new("PING")])),
            Output::Timeout(t(7000))
        ]
    );
    conn.handle_input(t(2001), b"+PONG\r\n");
    assert_eq!(drain(&mut conn), vec![Output::Timeout(t(4001))]);
    let id = conn.request(t(3000), Command::new("GET").arg("k"));
    drain(&mut conn);
    // Half a reply, then silence: dead 5 s after the last byte read.
    conn.handle_input(t(4000), b"$5\r\nab");
    assert_eq!(drain(&mut conn), vec![Output::Timeout(t(9000))]);
    conn.handle_timeout(t(9000));
    assert_eq!(
        drain(&mut conn),
        vec![
            reply(id.0, Err(RedisError::Lost)),
            Output::Close,
            Output::Event(Event::Down(DownReason::NoReply(Duration::from_secs(5)))),
            Output::Timeout(t(9100)),
        ]
    );
}

#[test]
fn garbage_and_unasked_replies_end_the_connection() {
    let mut conn = up(Mode::Commands);
    conn.handle_input(t(1), b"+surprise\r\n");
    assert_eq!(
        drain(&mut conn),
        vec![
            Output::Close,
            Output::Event(Event::Down(DownReason::Unexpected)),
            Output::Timeout(t(101)),
        ]
    );
    let mut conn = up(Mode::Commands);
    conn.request(t(1), Command::new("GET").arg("k"));
    drain(&mut conn);
    conn.handle_input(t(2), b"%2\r\n");
    assert_eq!(
        drain(&mut conn),
        vec![
            reply(0, Err(RedisError::Lost)),
            Output::Close,
            Output::Event(Event::Down(DownReason::Protocol(
                RespError::UnexpectedType(b'%')
            ))),
            Output::Timeout(t(102)),
        ]
    );
}

#[test]
fn error_replies_answer_one_command_only() {
    let mut conn = up(Mode::Commands);
    conn.request(t(1), Command::new("INCR").arg("s"));
    conn.request(t(1), Command::new("PING"));
    drain(&mut conn);
    conn.handle_input(t(2), b"-WRONGTYPE not a number\r\n+PONG\r\n");
    assert_eq!(
        drain(&mut conn),
        vec![
            reply(0, Err(RedisError::Refused("WRONGTYPE not a number".into()))),
            reply(1, Ok(Reply::Status("PONG".into()))),
            Output::Timeout(t(2002)),
        ]
    );
}

#[test]
fn pubsub_restores_subscriptions_after_a_reconnect() {
    let mut conn = up(Mode::PubSub);
    conn.subscribe(t(1), b"sb:a");
    conn.subscribe(t(1), b"sb:a");
    assert_eq!(
        drain(&mut conn),
        vec![
            Output::Transmit(bytes(&[Command::new("SUBSCRIBE").arg("sb:a")])),
            Output::Timeout(t(5001)),
        ]
    );
    conn.handle_input(
        t(2),
        b"*3\r\n$9\r\nsubscribe\r\n$4\r\nsb:a\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$4\r\nsb:a\r\n$2\r\nhi\r\n",
    );
    assert_eq!(
        drain(&mut conn),
        vec![
            Output::Event(Event::Subscribed {
                channel: b"sb:a".to_vec()
            }),
            Output::Event(Event::Message {
                channel: b"sb:a".to_vec(),
                payload: b"hi".to_vec()
            }),
            Output::Timeout(t(2002)),
        ]
    );
    // Commands do not belong on a pub/sub connection.
    conn.request(t(3), Command::new("GET").arg("k"));
    assert_eq!(drain(&mut conn)[0], reply(0, Err(RedisError::Closed)));
    // An idle subscribed connection pings; Redis answers a subscribed PING with an array.
    conn.handle_timeout(t(2002));
    assert_eq!(
        drain(&mut conn),
        vec![
            Output::Transmit(bytes(&[Command::new("PING")])),
            Output::Timeout(t(7002))
        ]
    );
    conn.handle_input(t(2003), b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    drain(&mut conn);
    conn.handle_disconnected(t(2004), "eof");
    drain(&mut conn);
    conn.handle_timeout(t(2104));
    drain(&mut conn);
    conn.handle_connected(t(2105));
    assert_eq!(
        drain(&mut conn),
        vec![
            Output::Event(Event::Up),
            Output::Transmit(bytes(&[Command::new("SUBSCRIBE").arg("sb:a")])),
            Output::Timeout(t(7105)),
        ]
    );
    conn.unsubscribe(t(2106), b"sb:a");
    conn.handle_input(t(2107), b"*3\r\n$9\r\nsubscribe\r\n$4\r\nsb:a\r\n:1\r\n");
    conn.handle_input(t(2108), b"*3\r\n$11\r\nunsubscribe\r\n$4\r\nsb:a\r\n:0\r\n");
    // Dropped while its confirmation was on the way: never reported live.
    assert_eq!(
        drain(&mut conn),
        vec![
            Output::Transmit(bytes(&[Command::new("UNSUBSCRIBE").arg("sb:a")])),
            Output::Timeout(t(4108)),
        ]
    );
}

#[test]
fn close_answers_everything_and_stops() {
    let mut conn = up(Mode::Commands);
    conn.request(t(1), Command::new("GET").arg("k"));
    drain(&mut conn);
    conn.close(t(2));
    conn.request(t(3), Command::new("GET").arg("k"));
    assert_eq!(
        drain(&mut conn),
        vec![
            reply(0, Err(RedisError::Lost)),
            Output::Close,
            reply(1, Err(RedisError::Closed)),
            Output::Timeout(Timestamp::MAX),
        ]
    );
    assert!(conn.is_closed());
    conn.handle_timeout(t(10_000));
    conn.handle_input(t(10_001), b"+OK\r\n");
    assert_eq!(drain(&mut conn), vec![Output::Timeout(Timestamp::MAX)]);
}

mod model {
    //! Against a reference model: whatever the order of requests, partial replies, drops and time, every request
    //! is answered exactly once, and every `Ok` is the reply to that request's own command.

    use alloc::collections::BTreeMap;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Step {
        Request,
        /// The server answers up to this many of the commands it has read, in order.
        Answer(usize),
        /// Only part of the next answer arrives.
        HalfAnswer,
        Drop,
        Wait(u64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => Just(Step::Request),
            3 => (1usize..4).prop_map(Step::Answer),
            1 => Just(Step::HalfAnswer),
            1 => Just(Step::Drop),
            2 => (0u64..3000).prop_map(Step::Wait),
        ]
    }

    /// A Redis that answers `ECHO n` with `:n` and the handshake with `+OK`.
    struct Server {
        read: Decoder,
        unanswered: Vec<Reply>,
        partial: Vec<u8>,
    }

    impl Server {
        fn new() -> Server {
            Server {
                read: Decoder::new(RespLimits::default()),
                unanswered: Vec::new(),
                partial: Vec::new(),
            }
        }

        fn take(&mut self, bytes: &[u8]) {
            self.read.feed(bytes);
            while let Some(command) = self.read.next_reply().unwrap() {
                let words = command.into_array().unwrap();
                let answer = match words[0].as_bytes().unwrap() {
                    b"ECHO" => Reply::Integer(words[1].as_int().unwrap()),
                    b"PING" => Reply::Status("PONG".into()),
                    _ => Reply::Status("OK".into()),
                };
                self.unanswered.push(answer);
            }
        }

        fn answer(&mut self, n: usize) -> Vec<u8> {
            let mut out = core::mem::take(&mut self.partial);
            for reply in self.unanswered.drain(..n.min(self.unanswered.len())) {
                match reply {
                    Reply::Integer(n) => out.extend_from_slice(std::format!(":{n}\r\n").as_bytes()),
                    _ => out.extend_from_slice(b"+OK\r\n"),
                }
            }
            out
        }
    }

    proptest! {
        #[test]
        fn every_request_is_answered_once_and_by_its_own_reply(
            steps in proptest::collection::vec(step(), 1..80),
            password in any::<bool>(),
        ) {
            let mut conn = RedisConnection::new(
                config(Mode::Commands, password.then_some("pw")), t(0), crate::rng::Rng::from_seed(7));
            let mut now = t(0);
            let mut server: Option<Server> = None;
            let mut answers: BTreeMap<u64, Result<Reply, RedisError>> = BTreeMap::new();
            let mut asked = 0u64;
            for step in steps {
                match step {
                    Step::Request => {
                        let id = conn.request(now, Command::new("ECHO").uint(asked));
                        prop_assert_eq!(id, RequestId(asked));
                        asked += 1;
                    }
                    Step::Answer(n) => {
                        if let Some(server) = &mut server {
                            let bytes = server.answer(n);
                            conn.handle_input(now, &bytes);
                        }
                    }
                    Step::HalfAnswer => {
                        if let Some(server) = &mut server {
                            let mut bytes = server.answer(1);
                            let rest = bytes.split_off(bytes.len() / 2);
                            conn.handle_input(now, &bytes);
                            server.partial = rest;
                        }
                    }
                    Step::Drop => {
                        if server.take().is_some() {
                            conn.handle_disconnected(now, "dropped");
                        }
                    }
                    Step::Wait(ms) => {
                        now += Duration::from_millis(ms);
                        conn.handle_timeout(now);
                    }
                }
                loop {
                    match conn.poll_output() {
                        Output::Connect => {
                            // Dials succeed at once.
                            server = Some(Server::new());
                            conn.handle_connected(now);
                        }
                        Output::Transmit(bytes) => {
                            prop_assert!(server.is_some(), "bytes written with no connection");
                            if let Some(server) = &mut server {
                                server.take(&bytes);
                            }
                        }
                        Output::Close => server = None,
                        Output::Event(Event::Reply { id, result }) => {
                            if let Ok(reply) = &result {
                                prop_assert_eq!(reply, &Reply::Integer(id.0 as i64));
                            }
                            prop_assert!(answers.insert(id.0, result).is_none(), "answered twice");
                        }
                        Output::Event(_) => {}
                        Output::Timeout(at) => {
                            prop_assert!(at >= now, "deadline in the past");
                            break;
                        }
                    }
                }
            }
            conn.close(now);
            while let output @ (Output::Event(_) | Output::Close) = conn.poll_output() {
                if let Output::Event(Event::Reply { id, result }) = output {
                    prop_assert!(answers.insert(id.0, result).is_none(), "answered twice");
                }
            }
            prop_assert_eq!(answers.len() as u64, asked, "every request answered");
        }
    }
}
