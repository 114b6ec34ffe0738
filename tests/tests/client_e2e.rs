//! End-to-end tests of the async `Client` against a real `Server`: every scenario in `client_scenarios/` runs once
//! on smol and once on async-std, over loopback TCP. Each is bounded in time and closes what it starts.

mod client_scenarios;

use switchboard_tests::on_every_runtime;

on_every_runtime!(
    client_scenarios;
    requests_get_their_answers_or_errors,
    subscribe_publish_and_receive,
    publish_batch_takes_consecutive_offsets,
    routed_call_through_serve,
    server_requests_and_notifications,
    survives_a_listener_restart_without_gap_or_duplicate,
    close_fails_pending_and_ends_streams,
    dropping_every_handle_closes_the_connection,
    a_refused_token_gives_up_and_a_good_one_connects,
    a_refused_handshake_gives_up_after_one_attempt,
    serve_takeover_the_newest_wins_and_routed_calls_keep_their_server,
    a_new_epoch_is_seen_as_resync,
    a_refreshing_client_outlives_its_first_token,
    a_connection_that_does_not_refresh_is_closed_with_4401,
    a_raw_refresh_keeps_the_connection,
    a_narrowing_refresh_ends_a_subscription,
    presence_tells_whether_the_worker_is_online,
    a_pattern_follows_new_channels_and_resumes_each_after_a_restart,
    a_channel_and_a_matching_pattern_deliver_each_event_once,
);
