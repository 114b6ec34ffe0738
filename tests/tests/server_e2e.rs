//! End-to-end server tests: every scenario in `scenarios/` runs once on smol and once on async-std, over loopback
//! TCP (and the in-memory transport where a scenario needs a peer that stops reading). Each test is bounded in
//! time and shuts down the servers it starts.

mod scenarios;

use switchboard_tests::on_every_runtime;

on_every_runtime!(
    scenarios;
    native_subscribe_and_publish_over_ws_and_http,
    http_routes_and_their_errors,
    http_limits_and_keep_alive,
    idle_connections_time_out,
    bad_handshakes_are_refused,
    tokens_are_checked_before_the_upgrade,
    project_stream_dialect,
    channel_payload_dialect,
    binary_and_oversize_frames,
    app_api_requests_notifications_and_handlers,
    server_request_times_out,
    slow_consumer_is_closed_and_recovers,
    graceful_shutdown_closes_with_1001,
    listener_restart_keeps_the_hub_and_history,
    in_memory_transport_serves_the_same_protocol,
    heartbeat_pings_and_closes_a_silent_connection_with_4008,
    websocket_rate_limit_answers_rate_limited,
    reserved_channels_are_refused_in_every_dialect,
    protocol_violations_get_a_close_frame,
    history_pages_are_bounded_by_bytes,
    idle_channels_are_forgotten_and_a_reused_name_starts_a_new_epoch,
    a_new_channel_past_max_channels_is_refused_until_idle_ones_are_forgotten,
    tokens_are_checked_before_names,
    a_bad_project_id_is_refused_on_the_websocket,
    an_unencoded_slash_names_a_nested_channel,
    rest_publishers_with_credentials_are_not_rate_limited,
    websocket_publishers_with_credentials_are_not_rate_limited,
    loopback_callers_are_trusted_without_auth,
    batch_publish_over_rest_is_all_or_none,
    batch_publish_over_native_websocket,
    idempotent_publish_over_rest_and_native,
    sdk_publishes_carry_idempotency_keys,
    presence_over_native_websocket_and_rest,
    a_peers_close_is_answered_once_after_what_was_queued,
    a_wake_up_during_the_sessions_own_poll_is_not_lost,
    event_streams_resume_without_gap_or_duplicate,
    event_streams_of_several_channels_and_of_a_project,
    event_streams_resync_or_refuse_bad_positions,
    event_streams_check_tokens_grants_origins_and_limits,
    slow_event_stream_is_closed_and_recovers,
    dashboard_page_channel_list_and_call_route,
);
