//! What changes while a page is open: the session's events, pushed by the server at
//! `/api/session/events` (server-sent events, read with the browser's `EventSource`), and the
//! countdown to the session's end. Both run only in the hydrated page.

use std::{rc::Rc, time::Duration};

use leptos::prelude::*;
use strum::VariantNames;
use wasm_bindgen::{closure::Closure, JsCast};

use crate::api::{SessionEvent, SessionView};

/// The event in an SSE message's data (its JSON carries the same `type` as the message's name);
/// `None` for anything this page does not know.
fn read_event(data: &str) -> Option<SessionEvent> {
    serde_json::from_str(data).ok()
}

/// An open subscription to the session's events; closed when dropped.
pub struct SessionEvents {
    source: web_sys::EventSource,
    _listeners: Vec<Closure<dyn Fn(web_sys::Event)>>,
}

impl SessionEvents {
    /// Subscribes; `on_open` runs each time the server has begun to listen (again), so that what
    /// happens next is not missed.
    pub fn open(on_open: impl Fn() + 'static, on_event: impl Fn(SessionEvent) + 'static) -> Option<Self> {
        let source = web_sys::EventSource::new("/api/session/events").ok()?;
        let on_event = Rc::new(on_event);
        let mut listeners: Vec<Closure<dyn Fn(web_sys::Event)>> = SessionEvent::VARIANTS
            .iter()
            .map(|_| {
                let on_event = on_event.clone();
                Closure::new(move |event: web_sys::Event| {
                    let data = event
                        .dyn_ref::<web_sys::MessageEvent>()
                        .and_then(|message| message.data().as_string())
                        .unwrap_or_default();
                    if let Some(event) = read_event(&data) {
                        on_event(event);
                    }
                })
            })
            .collect();
        listeners.push(Closure::new(move |_| on_open()));
        for (name, listener) in SessionEvent::VARIANTS.iter().chain(&["open"]).zip(&listeners) {
            let _ = source.add_event_listener_with_callback(name, listener.as_ref().unchecked_ref());
        }
        Some(Self {
            source,
            _listeners: listeners,
        })
    }
}

impl Drop for SessionEvents {
    fn drop(&mut self) {
        self.source.close();
    }
}

/// The browser's clock in milliseconds; 0 while rendering on the server, where nothing ticks.
fn browser_now() -> f64 {
    if cfg!(feature = "hydrate") {
        js_sys::Date::now()
    } else {
        0.0
    }
}

/// Milliseconds left in `session`, counted down once a second from what the server said was left
/// when it answered (so a browser whose clock is wrong still counts right).
pub fn time_left(
    session: impl Get<Value = Option<SessionView>> + Send + Sync + 'static,
) -> Signal<Option<i64>> {
    let now = RwSignal::new(browser_now());
    Effect::new(move |_| {
        if let Ok(ticker) = set_interval_with_handle(move || now.set(browser_now()), Duration::from_secs(1)) {
            on_cleanup(move || ticker.clear());
        }
    });
    // The moment, on the browser's clock, the session ends: fixed when its answer arrives.
    let deadline = Memo::new(move |_| session.get().map(|s| browser_now() + s.millis_left() as f64));
    Signal::derive(move || deadline.get().map(|end| (end - now.get()).max(0.0) as i64))
}

/// "54:07": minutes and seconds.
pub fn clock_text(millis: i64) -> String {
    let seconds = millis.div_euclid(1000);
    format!("{:02}:{:02}", seconds / 60, seconds % 60)
}

/// How urgent the time left is: `ok`, then `warn` at 10 minutes, `danger` at 5, `over` at 0.
pub fn urgency(millis: i64) -> &'static str {
    match millis {
        m if m <= 0 => "over",
        m if m <= 5 * 60_000 => "danger",
        m if m <= 10 * 60_000 => "warn",
        _ => "ok",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_from_their_data() {
        assert_eq!(
            read_event(r#"{"type":"warning","minutes_left":5}"#),
            Some(SessionEvent::Warning { minutes_left: 5 })
        );
        assert_eq!(read_event("not json"), None);
        assert_eq!(read_event(r#"{"type":"other"}"#), None);
    }

    #[test]
    fn the_clock_turns_yellow_at_ten_minutes_and_red_at_five() {
        assert_eq!(clock_text(54 * 60_000 + 7_999), "54:07");
        assert_eq!(clock_text(89 * 60_000), "89:00");
        assert_eq!(urgency(10 * 60_000 + 1), "ok");
        assert_eq!(urgency(10 * 60_000), "warn");
        assert_eq!(urgency(5 * 60_000), "danger");
        assert_eq!(urgency(0), "over");
    }
}
