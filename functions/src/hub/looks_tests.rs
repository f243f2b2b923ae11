//! The lookout's bound, against an STS that refuses every AssumeRole after
//! a pause and counts the requests it holds at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_sts::config::{Credentials, Region};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::super::members::{Reach, Seen};
use super::Lookout;

const REFUSED: &str = "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
    <Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not this role</Message></Error>\
    <RequestId>1</RequestId></ErrorResponse>";

#[derive(Default)]
struct Held {
    now: AtomicUsize,
    most: AtomicUsize,
    served: AtomicUsize,
}

/// An STS endpoint that holds each request `pause`, then refuses it.
async fn refusing_sts(pause: Duration) -> (String, Arc<Held>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let held = Arc::new(Held::default());
    let counts = held.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, counts.clone(), pause));
        }
    });
    (url, held)
}

/// One connection: each request read whole, held, answered 403.
async fn serve(mut stream: TcpStream, held: Arc<Held>, pause: Duration) {
    let mut buf = Vec::new();
    loop {
        let Some(end) = request_end(&buf) else {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        buf.drain(..end);
        let now = held.now.fetch_add(1, Ordering::SeqCst) + 1;
        held.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(pause).await;
        held.now.fetch_sub(1, Ordering::SeqCst);
        held.served.fetch_add(1, Ordering::SeqCst);
        let answer = format!(
            "HTTP/1.1 403 Forbidden\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{REFUSED}",
            REFUSED.len()
        );
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Where the first whole request in `buf` ends (headers and body), if any.
fn request_end(buf: &[u8]) -> Option<usize> {
    let head = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let text = String::from_utf8_lossy(&buf[..head]).to_ascii_lowercase();
    let length = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    (buf.len() >= head + length).then_some(head + length)
}

async fn reach(url: &str) -> Reach {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(Credentials::new("AKIDHUBTEST", "test", None, None, "test"))
        .load()
        .await;
    Reach {
        sdk,
        role_name: "cloudapps-hub-access".into(),
        secret_name: "cloudapps/connector-key".into(),
        region: "us-east-1".into(),
    }
}

fn accounts(first: u64, n: u64) -> Vec<String> {
    (first..first + n).map(|a| format!("{a:012}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_own_looks_and_those_at_nudged_accounts_take_turns_a_few_at_a_time() {
    let (url, held) = refusing_sts(Duration::from_millis(60)).await;
    let lookout = Lookout::new(reach(&url).await, 3);
    let (tx, mut rx) = mpsc::channel(256);
    let order = accounts(111_111_111_100, 12);
    let nudged = accounts(222_222_222_200, 12);
    let left = vec!["333333333333".to_string()];
    let all = tokio::spawn(lookout.clone().all(left, order.clone(), tx.clone()));
    for account in &nudged {
        lookout.later(account, &tx);
    }
    drop(tx);
    let mut seen = Vec::new();
    while let Some(look) = rx.recv().await {
        seen.push(look);
    }
    all.await.unwrap();
    assert_eq!(seen.len(), 1 + order.len() + nudged.len());
    let gone: Vec<&str> = seen
        .iter()
        .filter(|l| matches!(l.seen, Seen::Gone(_)))
        .map(|l| l.account.as_str())
        .collect();
    assert_eq!(gone, ["333333333333"], "the account that left, unasked");
    for look in seen.iter().filter(|l| l.account != "333333333333") {
        assert!(
            matches!(look.seen, Seen::Refused(_)),
            "{}: {:?}",
            look.account,
            look.seen
        );
    }
    assert_eq!(
        held.served.load(Ordering::SeqCst),
        order.len() + nudged.len()
    );
    // 24 looks, 12 of them spawned at once: never more than 3 at a time,
    // and 3 at times (the turns are used).
    assert_eq!(held.most.load(Ordering::SeqCst), 3);
    // The run's own looks answer in their order.
    let scanned: Vec<&str> = seen
        .iter()
        .map(|l| l.account.as_str())
        .filter(|a| order.iter().any(|o| o == a))
        .collect();
    assert_eq!(
        scanned,
        order.iter().map(String::as_str).collect::<Vec<_>>()
    );
}
