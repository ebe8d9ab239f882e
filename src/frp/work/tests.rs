use super::*;

/// Every idle connection keeps its task's whole future allocated: the future is as large
/// as its largest state. With the plugin, udp and dial paths inline it was 37 KiB, with the
/// cipher and compressor states inline 10 KiB; it is about 2 KiB.
#[test]
fn a_work_connections_task_stays_small() {
    let cfg = ClientConfig::new("127.0.0.1", 7000, "token");
    let (events, _) = broadcast::channel(4);
    let ctx = WorkContext::new(&cfg, &[], "run".into(), Default::default(), events);
    let opener = Opener::Direct(crate::frp::transport::Connector::new(&cfg).unwrap());
    let fut = serve(opener, Arc::new(ctx), CancellationToken::new());
    let size = std::mem::size_of_val(&fut);
    assert!(size <= 4096, "work connection future: {size} bytes");
}
use tokio::sync::broadcast::error::TryRecvError;

fn unreachable_events(rx: &mut broadcast::Receiver<Event>) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(Event::LocalUnreachable {
                suppressed, error, ..
            }) => out.push((suppressed, error)),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(TryRecvError::Empty) => return out,
            Err(e) => panic!("{e}"),
        }
    }
}

async fn next_unreachable(rx: &mut broadcast::Receiver<Event>) -> (u64, String) {
    let got = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
    match got {
        Ok(Ok(Event::LocalUnreachable {
            suppressed, error, ..
        })) => (suppressed, error),
        other => panic!("expected LocalUnreachable, got {other:?}"),
    }
}

/// 300 visitors while the local service is down: one report at once, one summary at the
/// end of the window, nothing else (it was 300 events and 300 WARN lines). The window is
/// shortened; the limiter's own test covers the timing rules with a fake clock.
#[tokio::test]
async fn a_crowd_of_failures_gives_one_report_and_one_summary() {
    let window = Duration::from_millis(300);
    let (events, mut rx) = broadcast::channel(1024);
    let proxy = Arc::new(WorkProxy::new(ProxyConfig::http("web", 1, "web"), window));
    let session = CancellationToken::new();
    let fail = |i: u32| {
        report_unreachable(
            &events,
            &proxy,
            "127.0.0.1:1",
            format!("refused {i}"),
            &session,
        )
    };
    let start = Instant::now();
    for i in 0..300 {
        fail(i);
    }
    assert_eq!(unreachable_events(&mut rx), [(0, "refused 0".to_string())]);
    assert_eq!(
        next_unreachable(&mut rx).await,
        (299, "refused 299".to_string())
    );
    assert!(start.elapsed() >= window);
    assert!(unreachable_events(&mut rx).is_empty());
    // Still failing in the next window: summed up at its end, not reported one by one.
    fail(300);
    fail(301);
    assert!(unreachable_events(&mut rx).is_empty());
    assert_eq!(
        next_unreachable(&mut rx).await,
        (2, "refused 301".to_string())
    );
    // A quiet window, then a failure is reported at once again.
    tokio::time::sleep(window * 2).await;
    fail(302);
    assert_eq!(
        unreachable_events(&mut rx),
        [(0, "refused 302".to_string())]
    );
    // A session that ends drops its pending summary.
    fail(303);
    session.cancel();
    tokio::time::sleep(window * 2).await;
    assert!(unreachable_events(&mut rx).is_empty());
}
