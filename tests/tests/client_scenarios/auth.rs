//! Tokens: a refused upgrade (401) stops the client for good; the right token connects.

use switchboard_protocol::server::Permissions;
use switchboard_runtime::Runtime;
use switchboard_runtime::client::{Client, ConnectionState, RequestError};
use switchboard_runtime::server::StaticTokens;
use switchboard_tests::{TEST_TIMEOUT, bounded};

use super::{connected, next, options, server_config, start};

/// Without a token the upgrade is answered 401: the client gives up at once (no retry loop) and fails its
/// requests. With the token (sent as `Authorization: Bearer`) it connects and works.
pub async fn a_refused_token_gives_up_and_a_good_one_connects<R: Runtime>(rt: R) {
    bounded(&rt, TEST_TIMEOUT, async {
        let tokens = StaticTokens::new().with("s3cret", Permissions::allow_all());
        let config = server_config().with_verifier(tokens);
        let (server, addr) = start(&rt, config).await;
        let url = format!("ws://{addr}/api/ws");

        let anonymous = Client::connect(rt.clone(), &url, options(9)).expect("valid URL");
        let mut states = anonymous.state_changes();
        let reason = loop {
            match next(&rt, &mut states).await {
                ConnectionState::GaveUp { reason } => break reason,
                ConnectionState::Connected { .. } => panic!("connected without a token"),
                _ => {}
            }
        };
        assert!(reason.contains("401"), "{reason}");
        assert_eq!(anonymous.get_state("x").await, Err(RequestError::Closed));

        let mut with_token = options(10);
        with_token.token = Some("s3cret".into());
        let member = Client::connect(rt.clone(), &url, with_token).expect("valid URL");
        let mut states = member.state_changes();
        connected(&rt, &mut states).await;
        assert_eq!(member.get_state("x").await.expect("state").offset, 0);
        member.close().await;
        server.shutdown().await;
    })
    .await
}
