//! The write path ([`WritePath`]) in a loop, for instruction counts under callgrind, which a shared machine does
//! not disturb:
//!
//! ```text
//! cargo build --release -p switchboard-runtime --features _internal_test_exports --example write_path_instructions
//! E=target/release/examples/write_path_instructions
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null $E 1000 16 10
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null $E 1000 16 110
//! ```
//!
//! Arguments: subscribers, events per batch, batches. Instructions per delivery = (Ir at 110 batches − Ir at 10)
//! / (100 × subscribers × events per batch), which cancels the setup.

use std::hint::black_box;
use std::sync::Arc;

use switchboard_runtime::write_path::{WritePath, event_text};

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().unwrap_or(0));
    let subscribers = args.next().unwrap_or(1000);
    let per_batch = args.next().unwrap_or(16);
    let batches = args.next().unwrap_or(10);
    let events: Vec<Arc<str>> = (0..per_batch).map(|seq| event_text(seq, 100)).collect();
    let mut path = WritePath::new(subscribers);
    let mut counted = 0;
    for _ in 0..batches {
        counted += path.deliver(black_box(&events));
    }
    println!("{counted} bytes delivered");
}
