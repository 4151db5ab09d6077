//! A local Lambda Runtime API: what the Lambda service offers a custom runtime.
//!
//! `GET /2018-06-01/runtime/invocation/next` hands out queued events (long-polling),
//! `POST .../invocation/{id}/response` and `.../error` take the results, and
//! `POST .../runtime/init/error` takes a start-up failure.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tiny_http::{Header, Method, Request, Response, Server};

const PREFIX: &str = "/2018-06-01/runtime";

/// What an invocation ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    Response(String),
    Error(String),
    /// No answer before the deadline (the process died or hung).
    TimedOut,
}

#[derive(Default)]
struct State {
    /// Request id, payload and the invocation's deadline (epoch ms).
    pending: VecDeque<(String, String, u128)>,
    results: HashMap<String, Invocation>,
    init_error: Option<String>,
    next_id: u64,
    /// When the runtime first asked for work: the end of its start-up.
    first_poll: Option<Instant>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

/// A running Runtime API on a loopback port; stops serving when dropped.
pub struct RuntimeApi {
    server: Arc<Server>,
    shared: Arc<Shared>,
    address: String,
}

impl RuntimeApi {
    pub fn start() -> Self {
        let server = Arc::new(Server::http("127.0.0.1:0").expect("bind a loopback port"));
        let address = server
            .server_addr()
            .to_ip()
            .map(|a| a.to_string())
            .expect("an IP listener");
        let shared = Arc::new(Shared::default());
        let (srv, sh) = (Arc::clone(&server), Arc::clone(&shared));
        std::thread::spawn(move || {
            for request in srv.incoming_requests() {
                let sh = Arc::clone(&sh);
                // `next` blocks until there is work: one thread per request.
                std::thread::spawn(move || serve(&sh, request));
            }
        });
        RuntimeApi {
            server,
            shared,
            address,
        }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Queues an event and waits for its result; `timeout` is also the invocation's deadline
    /// as the function sees it (`Lambda-Runtime-Deadline-Ms`), as the function's timeout is.
    pub fn invoke(&self, payload: String, timeout: Duration) -> Invocation {
        let deadline_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| (d + timeout).as_millis())
            .unwrap_or_default();
        let id = {
            let mut state = self.shared.state.lock().expect("lock");
            state.next_id += 1;
            let id = format!("req-{}", state.next_id);
            state.pending.push_back((id.clone(), payload, deadline_ms));
            id
        };
        self.shared.changed.notify_all();
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.state.lock().expect("lock");
        loop {
            if let Some(result) = state.results.remove(&id) {
                return result;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                // Take it back so a later runtime does not pick up a stale event.
                state.pending.retain(|(p, _, _)| p != &id);
                return Invocation::TimedOut;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .expect("lock")
                .0;
        }
    }

    /// When the runtime first asked for an event (its start-up ends there), if it has.
    pub fn first_poll(&self) -> Option<Instant> {
        self.shared.state.lock().expect("lock").first_poll
    }

    pub fn init_error(&self) -> Option<String> {
        self.shared.state.lock().expect("lock").init_error.clone()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid header")
}

fn serve(shared: &Shared, mut request: Request) {
    let url = request.url().to_owned();
    let path = url.strip_prefix(PREFIX).unwrap_or(&url).to_owned();
    let mut body = String::new();
    let _ = std::io::Read::read_to_string(request.as_reader(), &mut body);
    let method = request.method().clone();
    let response = match (method, path.as_str()) {
        (Method::Get, "/invocation/next") => next(shared),
        (Method::Post, "/init/error") => {
            shared.state.lock().expect("lock").init_error = Some(body);
            shared.changed.notify_all();
            Response::from_string("").with_status_code(202)
        }
        (Method::Post, p) => {
            let mut parts = p.trim_start_matches("/invocation/").splitn(2, '/');
            let (id, kind) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            let result = match kind {
                "response" => Invocation::Response(body),
                "error" => Invocation::Error(body),
                _ => {
                    let _ =
                        request.respond(Response::from_string("not found").with_status_code(404));
                    return;
                }
            };
            shared
                .state
                .lock()
                .expect("lock")
                .results
                .insert(id.to_owned(), result);
            shared.changed.notify_all();
            Response::from_string("").with_status_code(202)
        }
        _ => Response::from_string("not found").with_status_code(404),
    };
    let _ = request.respond(response);
}

fn next(shared: &Shared) -> Response<std::io::Cursor<Vec<u8>>> {
    let mut state = shared.state.lock().expect("lock");
    state.first_poll.get_or_insert_with(Instant::now);
    let (id, payload, deadline_ms) = loop {
        if let Some(work) = state.pending.pop_front() {
            break work;
        }
        state = shared.changed.wait(state).expect("lock");
    };
    Response::from_string(payload)
        .with_header(header("Content-Type", "application/json"))
        .with_header(header("Lambda-Runtime-Aws-Request-Id", &id))
        .with_header(header(
            "Lambda-Runtime-Deadline-Ms",
            &deadline_ms.to_string(),
        ))
        .with_header(header(
            "Lambda-Runtime-Invoked-Function-Arn",
            "arn:aws:lambda:us-east-1:123456789012:function:ssmbak-test",
        ))
        .with_header(header(
            "Lambda-Runtime-Trace-Id",
            "Root=1-00000000-000000000000000000000000",
        ))
}
