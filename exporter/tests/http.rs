//! The in-process HTTP endpoint: routes, limits and robustness.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use gstbroadcast_exporter::http::{self, Limits};
use gstbroadcast_exporter::{counter_vec, start_http};

fn loopback0() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn server() -> SocketAddr {
    start_http(loopback0()).expect("start_http")
}

#[test]
fn serves_metrics_and_healthz() {
    counter_vec("gst_http_test_requests_total", "Test counter.")
        .with_label_values(&["pipe", "elem", "video_0"])
        .inc_by(7);
    let addr = server();
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0);

    let r = get(addr, "/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(
        r.body.contains(
            "gst_http_test_requests_total{element=\"elem\",pipeline=\"pipe\",stream=\"video_0\"} 7\n"
        ),
        "{}",
        r.body
    );
    assert!(r
        .body
        .contains("# TYPE gst_http_test_requests_total counter\n"));
    assert_eq!(
        r.header("content-length")
            .map(|l| l.parse::<usize>().unwrap()),
        Some(r.body.len())
    );

    let r = get(addr, "/healthz");
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));

    // Query strings do not change the route.
    assert_eq!(get(addr, "/metrics?x=1").status, 200);
}

#[test]
fn start_http_is_once_per_address() {
    let a = server();
    let b = server();
    assert_eq!(a, b);
    assert_eq!(
        start_http(a).unwrap(),
        a,
        "the bound address maps to itself"
    );
    // Another explicit address gets its own server, or its bind error.
    let taken = std::net::TcpListener::bind(loopback0()).unwrap();
    let err = start_http(taken.local_addr().unwrap()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
}

#[test]
fn methods_paths_and_bodies() {
    let addr = server();
    for path in ["/metrics", "/healthz"] {
        for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
            let r = request(addr, method, path);
            assert_eq!(r.status, 405, "{method} {path}");
            assert_eq!(r.header("allow"), Some("GET, HEAD"), "{method} {path}");
        }
        let r = request(addr, "HEAD", path);
        assert_eq!(r.status, 200, "HEAD {path}");
        assert_eq!(r.body, "", "HEAD {path} has no body");
    }
    for path in ["/nope", "/", "/metrics/", "/Metrics", "/healthz/x"] {
        assert_eq!(get(addr, path).status, 404, "{path}");
    }
    assert_eq!(request(addr, "POST", "/nope").status, 404);

    let r = exchange(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
    )
    .unwrap();
    assert_eq!(r.status, 413);
    let r = exchange(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.status, 413);
    // An empty body is no body.
    let r = exchange(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.status, 200);
}

#[test]
fn keep_alive_serves_several_requests() {
    let addr = server();
    let mut s = connect(addr);
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let raw = String::from_utf8(read_all(&mut s).unwrap()).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw}");
    assert!(raw.contains("HTTP/1.1 404 Not Found\r\n"), "{raw}");
}

#[test]
fn bad_requests_get_4xx_and_server_survives() {
    let addr = server();
    let garbage: [&[u8]; 6] = [
        b"\x00\x01\x02 garbage\r\n\r\n",
        b"GARBAGE\r\n\r\n",
        b"GET /metrics HTTP/9.9\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nBad Header Without Colon\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        b"\xff\xfe\xfd\r\n\r\n",
    ];
    for g in garbage {
        // Either a 4xx or a close without an answer.
        if let Some(r) = exchange(addr, g) {
            assert!((400..500).contains(&r.status), "{g:?} -> {}", r.status);
        }
        assert_eq!(get(addr, "/healthz").status, 200, "after {g:?}");
    }

    // A request head over 8 KiB.
    let big = format!(
        "GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    if let Some(r) = exchange(addr, big.as_bytes()) {
        assert_eq!(r.status, 431);
    }
    assert_eq!(get(addr, "/metrics").status, 200);
}

#[test]
fn stalled_client_does_not_block_others_and_is_dropped() {
    let addr = server();
    let mut stalled = connect(addr);
    stalled
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nX-Half: ")
        .unwrap();
    let t = Instant::now();
    for _ in 0..5 {
        assert_eq!(get(addr, "/healthz").status, 200);
    }
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());

    // The 5 s header read timeout closes the stalled connection.
    let answer = read_all(&mut stalled);
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(12),
        "closed after {waited:?}"
    );
    if let Ok(bytes) = answer {
        if let Some(r) = parse_response(&bytes) {
            assert!((400..500).contains(&r.status), "{}", r.status);
        }
    }
}

#[test]
fn extra_connections_are_closed() {
    let limits = Limits {
        max_connections: 2,
        ..Limits::default()
    };
    let srv = http::serve(loopback0(), limits, || "x 1\n".to_owned()).unwrap();
    let addr = srv.local_addr();
    let mut a = connect(addr);
    let b = connect(addr);
    a.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    // The third connection is accepted and closed without an answer.
    std::thread::sleep(Duration::from_millis(200));
    let mut c = connect(addr);
    let _ = c.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let got = read_all(&mut c).unwrap_or_default();
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));

    // Freeing a slot lets new clients in.
    drop(b);
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let raw = b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
        if let Some(r) = exchange(addr, raw) {
            assert_eq!((r.status, r.body.as_str()), (200, "x 1\n"));
            break;
        }
        assert!(Instant::now() < deadline, "slots were never freed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn connection_lifetime_is_limited() {
    let limits = Limits {
        connection_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let srv = http::serve(loopback0(), limits, String::new).unwrap();
    let mut s = connect(srv.local_addr());
    let t = Instant::now();
    // Keep-alive requests, one every 200 ms: each is answered until the
    // connection's 1 s lifetime ends.
    let mut answered = 0;
    while t.elapsed() < Duration::from_secs(5) {
        if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .is_err()
        {
            break;
        }
        let mut buf = [0u8; 1024];
        match std::io::Read::read(&mut s, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => answered += 1,
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let lived = t.elapsed();
    assert!(answered >= 2, "{answered}");
    assert!(
        lived >= Duration::from_millis(900) && lived < Duration::from_secs(3),
        "{lived:?}"
    );
}
