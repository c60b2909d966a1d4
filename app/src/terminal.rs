//! The learner's terminal: xterm.js 6 (vendored from npm, served under `/vendor` and loaded when
//! a terminal first appears) bound through a thin `extern` block of our own (the `xterm-js-rs`
//! crate targets xterm 4), and connected to `/ws/terminal` with a single-use ticket. It fits its
//! panel as that resizes, reconnects by itself with backoff, copies with Ctrl+Shift+C (Ctrl+Shift+V
//! is left to the browser's paste, which xterm.js reads) and with a right-click on a selection
//! (a right-click without one pastes), has a font-size control, shows how the connection is in
//! `[data-terminal-status]`, takes the focus once connected, and tells the page when the session
//! behind it is over. Tabs above it open more shells (as the real exam allows several
//! terminals), each its own tmux session in the same container, kept with its screen and
//! scroll-back while another is in front. The session is one: once any tab learns that it is
//! over (told by the server before its socket closes, or answered "gone" when it asks again),
//! every tab says the same and none reconnects.

use std::{
    cell::{Cell, RefCell},
    rc::Rc,
    time::Duration,
};

use leptos::{html, prelude::*, task::spawn_local};
use send_wrapper::SendWrapper;
use wasm_bindgen::{closure::Closure, prelude::wasm_bindgen, JsCast, JsValue};

use crate::api::{
    SessionStatus, SessionView, TerminalControl, TerminalNotice, TerminalTicket, TERMINAL_MESSAGE_LIMIT,
    TERMINAL_TABS,
};

#[wasm_bindgen]
extern "C" {
    /// xterm.js's `Terminal`, a page global once `/vendor/xterm.js` has loaded.
    #[wasm_bindgen(js_name = Terminal)]
    #[derive(Clone)]
    type XTerm;
    #[wasm_bindgen(constructor, js_class = Terminal)]
    fn new(options: &JsValue) -> XTerm;
    #[wasm_bindgen(method, js_class = Terminal)]
    fn open(this: &XTerm, parent: &web_sys::HtmlElement);
    #[wasm_bindgen(method, js_class = Terminal, js_name = loadAddon)]
    fn load_addon(this: &XTerm, addon: &JsValue);
    #[wasm_bindgen(method, js_class = Terminal)]
    fn write(this: &XTerm, data: &js_sys::Uint8Array);
    #[wasm_bindgen(method, js_class = Terminal)]
    fn focus(this: &XTerm);
    #[wasm_bindgen(method, js_class = Terminal)]
    fn dispose(this: &XTerm);
    #[wasm_bindgen(method, js_class = Terminal, js_name = getSelection)]
    fn get_selection(this: &XTerm) -> String;
    #[wasm_bindgen(method, getter, js_class = Terminal)]
    fn cols(this: &XTerm) -> u16;
    #[wasm_bindgen(method, getter, js_class = Terminal)]
    fn rows(this: &XTerm) -> u16;
    #[wasm_bindgen(method, js_class = Terminal, js_name = onData)]
    fn on_data(this: &XTerm, listener: &js_sys::Function);
    #[wasm_bindgen(method, js_class = Terminal, js_name = onResize)]
    fn on_resize(this: &XTerm, listener: &js_sys::Function);
    #[wasm_bindgen(method, js_class = Terminal, js_name = attachCustomKeyEventHandler)]
    fn attach_custom_key_event_handler(this: &XTerm, handler: &js_sys::Function);
    #[wasm_bindgen(method, js_class = Terminal, js_name = hasSelection)]
    fn has_selection(this: &XTerm) -> bool;
    #[wasm_bindgen(method, getter, js_class = Terminal)]
    fn options(this: &XTerm) -> JsValue;

    /// `FitAddon.FitAddon` from `/vendor/addon-fit.js`.
    #[wasm_bindgen(js_namespace = FitAddon, js_name = FitAddon)]
    #[derive(Clone)]
    type Fit;
    #[wasm_bindgen(constructor, js_namespace = FitAddon, js_class = FitAddon)]
    fn new() -> Fit;
    #[wasm_bindgen(method, js_namespace = FitAddon, js_class = FitAddon)]
    fn fit(this: &Fit);

    /// `WebLinksAddon.WebLinksAddon` from `/vendor/addon-web-links.js`: links in the output open.
    #[wasm_bindgen(js_namespace = WebLinksAddon, js_name = WebLinksAddon)]
    type Links;
    #[wasm_bindgen(constructor, js_namespace = WebLinksAddon, js_class = WebLinksAddon)]
    fn new() -> Links;
}

/// xterm.js's options.
const OPTIONS: &str = r##"{"cursorBlink":true,"fontFamily":"ui-monospace, \"DejaVu Sans Mono\", monospace","fontSize":14,"scrollback":5000,"theme":{"background":"#0f172a"}}"##;
/// The terminal's font sizes, in pixels; the learner's choice is kept in the browser.
const FONT_SIZES: std::ops::RangeInclusive<u32> = 10..=24;
const FONT_SIZE_DEFAULT: u32 = 14;
const FONT_SIZE_KEY: &str = "ckad.terminal.font-size";
const PING_EVERY: Duration = Duration::from_secs(15);
const PONG_WITHIN: Duration = Duration::from_secs(10);
const BACKOFF_MS: [f64; 6] = [500.0, 1000.0, 2000.0, 4000.0, 8000.0, 15000.0];
/// How long to wait for a session still starting before asking again.
const STARTING_POLL: Duration = Duration::from_secs(1);

/// How the terminal's connection is; its name is the `data-state` the page styles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
enum Link {
    Connecting,
    Connected,
    Reconnecting,
    Ended,
}

/// One tab of the terminal panel: a shell of its own, with its own screen and scroll-back.
#[derive(Clone, Copy)]
struct Tab {
    status: RwSignal<(Link, String)>,
    /// Only ever set in the browser: on the server it stays `None`, so nothing thread-bound is
    /// dropped on another thread.
    live: RwSignal<Option<SendWrapper<Rc<Live>>>>,
}

/// The terminal panel: up to [`TERMINAL_TABS`] tabs, each a shell of its own ("+" opens the
/// next). `on_ended` hears the sentence shown when the session behind it is over; each label set
/// in `marker` becomes a chapter of the session's recording.
#[component]
pub fn Terminal(
    #[prop(into)] on_ended: Callback<String>,
    #[prop(optional)] marker: Option<ReadSignal<Option<String>>>,
) -> impl IntoView {
    let tabs: [Tab; TERMINAL_TABS as usize] = std::array::from_fn(|_| Tab {
        status: RwSignal::new((Link::Connecting, "Connecting…".to_owned())),
        live: RwSignal::new(None),
    });
    let opened = RwSignal::new(1usize);
    let front = RwSignal::new(0usize);
    // Why the session is over, as the first tab to learn it heard; then every tab says so.
    let ended = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        let Some(message) = ended.get() else { return };
        for tab in tabs {
            tab.live.with_untracked(|live| {
                if let Some(live) = live {
                    live.finish(&message);
                }
            });
        }
        on_ended.run(message);
    });
    // Through the first tab, which is always there; a label set before its terminal exists is
    // sent once it does (and kept by it until its socket opens).
    Effect::new(move |_| {
        let Some(label) = marker.and_then(|marker| marker.get()) else {
            return;
        };
        tabs[0].live.with(|live| {
            if let Some(live) = live {
                live.mark(label);
            }
        });
    });
    // The saved size is read once hydrated (the server renders the default).
    let font = RwSignal::new(FONT_SIZE_DEFAULT);
    Effect::new(move |_| font.set(saved_font_size()));
    let resize_font = move |step: i32| {
        let size = font
            .get_untracked()
            .saturating_add_signed(step)
            .clamp(*FONT_SIZES.start(), *FONT_SIZES.end());
        font.set(size);
        if let Ok(Some(storage)) = window().local_storage() {
            let _ = storage.set_item(FONT_SIZE_KEY, &size.to_string());
        }
        for tab in tabs {
            tab.live.with_untracked(|live| {
                if let Some(live) = live {
                    live.set_font_size(size);
                }
            });
        }
    };
    let open_tab = move |_| {
        let count = opened.get_untracked();
        if count < tabs.len() {
            opened.set(count + 1);
            front.set(count);
        }
    };
    let status = move || tabs[front.get()].status.get();
    let state = move || -> &'static str { status().0.into() };
    view! {
        <div class="terminal-bar">
            <div class="terminal-tabs" role="tablist" aria-label="Terminals">
                <For each=move || 0..opened.get() key=|number| *number children=move |number| view! {
                    <button class="terminal-tab" role="tab"
                        aria-selected=move || (front.get() == number).to_string()
                        on:click=move |_| front.set(number)>{format!("Terminal {}", number + 1)}</button>
                }/>
                <button class="terminal-tab-new" aria-label="Open another terminal"
                    title="Open another terminal: a shell of its own"
                    disabled={move || opened.get() >= tabs.len() || ended.with(Option::is_some)}
                    on:click=open_tab>"+"</button>
            </div>
            <p class="terminal-status" data-terminal-status data-state=state role="status">
                {move || status().1}
            </p>
            <div class="font-size" role="group" aria-label="Terminal font size">
                <button class="font-button" aria-label="Smaller text" on:click=move |_| resize_font(-1)
                    disabled={move || font.get() <= *FONT_SIZES.start()}>"A−"</button>
                <span class="font-value" data-font-size=move || font.get()>{move || format!("{} px", font.get())}</span>
                <button class="font-button" aria-label="Larger text" on:click=move |_| resize_font(1)
                    disabled={move || font.get() >= *FONT_SIZES.end()}>"A+"</button>
            </div>
        </div>
        <div class="terminals">
            <For each=move || 0..opened.get() key=|number| *number children=move |number| view! {
                <Shell number tab=tabs[number] front ended/>
            }/>
        </div>
    }
}

/// A tab's terminal; those behind the front one stay on the page, hidden, with their screens.
#[component]
fn Shell(number: usize, tab: Tab, front: RwSignal<usize>, ended: RwSignal<Option<String>>) -> impl IntoView {
    let host = NodeRef::<html::Div>::new();
    // Runs in the browser only, once the element is there; closed with the page.
    Effect::new(move |_| {
        let Some(element) = host.get() else {
            return;
        };
        let terminal = Rc::new(Live::new(element.into(), tab.status, ended, number + 1));
        spawn_local(terminal.clone().start());
        tab.live.set(Some(SendWrapper::new(terminal.clone())));
        let terminal = SendWrapper::new(terminal);
        on_cleanup(move || terminal.dispose());
    });
    // Brought to the front: it takes the focus, and the recording follows its screen.
    Effect::new(move |_| {
        let in_front = front.get() == number;
        tab.live.with(|live| {
            if let Some(live) = live {
                live.set_front(in_front);
            }
        });
    });
    let state = move || -> &'static str { tab.status.with(|(link, _)| (*link).into()) };
    view! {
        <div class="terminal" data-terminal data-tab=number + 1 data-state=state role="tabpanel"
            aria-label=format!("Terminal {}", number + 1)
            class:behind=move || front.get() != number node_ref=host></div>
    }
}

/// The font size the learner chose last, in this browser.
fn saved_font_size() -> u32 {
    window()
        .local_storage()
        .ok()
        .flatten()
        .and_then(|storage| storage.get_item(FONT_SIZE_KEY).ok().flatten())
        .and_then(|size| size.parse().ok())
        .filter(|size| FONT_SIZES.contains(size))
        .unwrap_or(FONT_SIZE_DEFAULT)
}

/// A terminal on the page: xterm.js, its socket and the timers around them.
struct Live {
    element: web_sys::HtmlElement,
    status: RwSignal<(Link, String)>,
    /// The panel's: why the session is over, once any of its tabs has learned it.
    ended: RwSignal<Option<String>>,
    term: RefCell<Option<(XTerm, Fit)>>,
    socket: RefCell<Option<web_sys::WebSocket>>,
    /// Bumped at each connection, so that a late event of an old socket is ignored.
    generation: Cell<u32>,
    attempt: Cell<usize>,
    /// Gone from the page: nothing reconnects.
    gone: Cell<bool>,
    /// Its socket has opened once: a session it finds missing afterwards has ended.
    was_connected: Cell<bool>,
    heartbeat: Cell<Option<IntervalHandle>>,
    pong_due: Cell<Option<TimeoutHandle>>,
    observer: RefCell<Option<web_sys::ResizeObserver>>,
    /// The callbacks handed to xterm.js, the socket and the observer, alive as long as they are.
    callbacks: RefCell<Vec<Box<dyn std::any::Any>>>,
    /// Chapters set while no socket was open (the first task's, before the first connects),
    /// sent once one opens.
    markers: RefCell<Vec<String>>,
    /// Which of the session's shells, from 1.
    tab: usize,
    /// Its tab is the one shown.
    front: Cell<bool>,
}

impl Live {
    fn new(
        element: web_sys::HtmlElement,
        status: RwSignal<(Link, String)>,
        ended: RwSignal<Option<String>>,
        tab: usize,
    ) -> Self {
        Self {
            element,
            status,
            ended,
            term: RefCell::default(),
            socket: RefCell::default(),
            generation: Cell::default(),
            attempt: Cell::default(),
            gone: Cell::default(),
            was_connected: Cell::default(),
            heartbeat: Cell::default(),
            pong_due: Cell::default(),
            observer: RefCell::default(),
            callbacks: RefCell::default(),
            markers: RefCell::default(),
            tab,
            front: Cell::default(),
        }
    }

    fn keep(&self, callback: impl std::any::Any) {
        self.callbacks.borrow_mut().push(Box::new(callback));
    }

    async fn start(self: Rc<Self>) {
        if let Err(error) = load_vendor().await {
            leptos::logging::error!("xterm.js did not load: {error:?}");
            self.show(Link::Ended, "The terminal could not load; reload the page.");
            return;
        }
        if self.is_over() {
            return;
        }
        let options = js_sys::JSON::parse(OPTIONS).unwrap_or_default();
        let _ = js_sys::Reflect::set(&options, &"fontSize".into(), &saved_font_size().into());
        let term = XTerm::new(&options);
        let fit = Fit::new();
        term.load_addon(&fit);
        term.load_addon(&Links::new());
        term.open(&self.element);
        fit.fit();

        // Copy and paste as in a desktop terminal.
        let selection = term.clone();
        let keys =
            Closure::<dyn Fn(web_sys::KeyboardEvent) -> bool>::new(move |event: web_sys::KeyboardEvent| {
                if event.type_() != "keydown" || !event.ctrl_key() || !event.shift_key() {
                    return true;
                }
                if event.code() == "KeyC" {
                    let _ = window()
                        .navigator()
                        .clipboard()
                        .write_text(&selection.get_selection());
                    return false;
                }
                event.code() != "KeyV"
            });
        term.attach_custom_key_event_handler(keys.as_ref().unchecked_ref());
        self.keep(keys);

        // Right-click as in the exam's terminal: copies the selection, or pastes when none.
        let me = Rc::downgrade(&self);
        let selection = term.clone();
        let right_click = Closure::<dyn Fn(web_sys::MouseEvent)>::new(move |event: web_sys::MouseEvent| {
            event.prevent_default();
            let clipboard = window().navigator().clipboard();
            if selection.has_selection() {
                let _ = clipboard.write_text(&selection.get_selection());
                return;
            }
            let me = me.clone();
            spawn_local(async move {
                let Ok(text) = wasm_bindgen_futures::JsFuture::from(clipboard.read_text()).await else {
                    return;
                };
                if let (Some(me), Some(text)) = (me.upgrade(), text.as_string()) {
                    me.send(Frame::Bytes(text.as_bytes()));
                }
            });
        });
        let _ = self
            .element
            .add_event_listener_with_callback("contextmenu", right_click.as_ref().unchecked_ref());
        self.keep(right_click);

        let me = Rc::downgrade(&self);
        let typed = Closure::<dyn Fn(String)>::new(move |data: String| {
            if let Some(me) = me.upgrade() {
                me.send(Frame::Bytes(data.as_bytes()));
            }
        });
        term.on_data(typed.as_ref().unchecked_ref());
        self.keep(typed);

        let me = Rc::downgrade(&self);
        let resized = Closure::<dyn Fn(JsValue)>::new(move |size: JsValue| {
            let field = |name: &str| {
                js_sys::Reflect::get(&size, &name.into())
                    .ok()
                    .and_then(|v| v.as_f64())
                    .unwrap_or_default() as u16
            };
            if let Some(me) = me.upgrade() {
                let control = TerminalControl::Resize {
                    cols: field("cols"),
                    rows: field("rows"),
                };
                me.send(Frame::Control(control));
            }
        });
        term.on_resize(resized.as_ref().unchecked_ref());
        self.keep(resized);

        let refit = fit.clone();
        let observed = Closure::<dyn Fn()>::new(move || refit.fit());
        if let Ok(observer) = web_sys::ResizeObserver::new(observed.as_ref().unchecked_ref()) {
            observer.observe(&self.element);
            *self.observer.borrow_mut() = Some(observer);
        }
        self.keep(observed);

        *self.term.borrow_mut() = Some((term, fit));
        self.connect();
    }

    fn connect(self: &Rc<Self>) {
        spawn_local(self.clone().try_connect());
    }

    /// What the tab says about its connection; an end is the panel's to say, for every tab.
    fn show(&self, link: Link, message: &str) {
        if self.is_over() {
            return;
        }
        if link == Link::Ended {
            self.ended.set(Some(message.to_owned()));
        } else {
            self.status.set((link, message.to_owned()));
        }
    }

    /// Gone from the page, or the session is over: nothing more to connect to.
    fn is_over(&self) -> bool {
        self.gone.get() || self.ended.with_untracked(Option::is_some)
    }

    /// The session is over: the tab says why, drops its socket (whose late events are ignored)
    /// and never reconnects.
    fn finish(&self, message: &str) {
        self.generation.set(self.generation.get().wrapping_add(1));
        self.stop_heartbeat();
        if let Some(socket) = self.socket.take() {
            let _ = socket.close();
        }
        self.status.set((Link::Ended, message.to_owned()));
    }

    fn is_open(&self) -> bool {
        self.socket
            .borrow()
            .as_ref()
            .is_some_and(|s| s.ready_state() == web_sys::WebSocket::OPEN)
    }

    /// A chapter of the recording: sent now, or when a socket next opens.
    fn mark(&self, label: String) {
        if self.is_open() {
            self.send(Frame::Control(TerminalControl::Marker { label }));
        } else {
            self.markers.borrow_mut().push(label);
        }
    }

    /// Shown or hidden by its tab; shown, it takes the focus and the recording follows it.
    fn set_front(&self, front: bool) {
        let was = self.front.replace(front);
        if front && !was {
            self.come_forward();
        }
    }

    fn come_forward(&self) {
        if !self.is_open() {
            return;
        }
        self.send(Frame::Control(TerminalControl::Front));
        if let Some((term, _)) = self.term.borrow().as_ref() {
            term.focus();
        }
    }

    fn send(&self, frame: Frame<'_>) {
        let socket = self.socket.borrow();
        let Some(socket) = socket
            .as_ref()
            .filter(|s| s.ready_state() == web_sys::WebSocket::OPEN)
        else {
            return;
        };
        let _ = match frame {
            // A big paste goes in pieces the server accepts.
            Frame::Bytes(bytes) => bytes
                .chunks(TERMINAL_MESSAGE_LIMIT)
                .try_for_each(|piece| socket.send_with_u8_array(piece)),
            Frame::Control(control) => {
                socket.send_with_str(&serde_json::to_string(&control).unwrap_or_default())
            }
        };
    }

    async fn try_connect(self: Rc<Self>) {
        if self.is_over() {
            return;
        }
        if self.attempt.get() == 0 {
            self.show(Link::Connecting, "Connecting…");
        } else {
            self.show(Link::Reconnecting, "Reconnecting…");
        }
        let ticket = match self.ticket().await {
            Ok(Some(ticket)) => ticket,
            Ok(None) => return,
            Err(()) => return self.retry(None),
        };
        let Some((cols, rows)) = self
            .term
            .borrow()
            .as_ref()
            .map(|(term, _)| (term.cols(), term.rows()))
        else {
            return;
        };
        let location = window().location();
        let scheme = if location.protocol().as_deref() == Ok("https:") {
            "wss"
        } else {
            "ws"
        };
        let host = location.host().unwrap_or_default();
        let ticket = String::from(js_sys::encode_uri_component(&ticket.ticket));
        let tab = self.tab;
        let url = format!("{scheme}://{host}/ws/terminal?ticket={ticket}&cols={cols}&rows={rows}&tab={tab}");
        let Ok(socket) = web_sys::WebSocket::new(&url) else {
            return self.retry(None);
        };
        socket.set_binary_type(web_sys::BinaryType::Arraybuffer);
        self.generation.set(self.generation.get().wrapping_add(1));
        let generation = self.generation.get();
        let current = {
            let me = Rc::downgrade(&self);
            move || me.upgrade().filter(|me| me.generation.get() == generation)
        };
        // What the server said last before closing, if anything.
        let ending = Rc::new(RefCell::new(None::<TerminalNotice>));

        let opened = Closure::<dyn Fn()>::new({
            let current = current.clone();
            move || {
                let Some(me) = current() else { return };
                me.attempt.set(0);
                me.was_connected.set(true);
                me.show(Link::Connected, "Connected");
                let waiting = me.markers.take();
                for label in waiting {
                    me.send(Frame::Control(TerminalControl::Marker { label }));
                }
                if me.front.get() {
                    me.come_forward();
                }
                let beat = Rc::downgrade(&me);
                let heartbeat = set_interval_with_handle(
                    move || {
                        let Some(me) = beat.upgrade() else { return };
                        me.send(Frame::Control(TerminalControl::Ping));
                        let late = Rc::downgrade(&me);
                        let due = set_timeout_with_handle(
                            move || {
                                if let Some(socket) = late.upgrade().and_then(|me| me.socket.borrow().clone())
                                {
                                    let _ = socket.close();
                                }
                            },
                            PONG_WITHIN,
                        );
                        if let Some(earlier) = me.pong_due.replace(due.ok()) {
                            earlier.clear();
                        }
                    },
                    PING_EVERY,
                );
                if let Some(earlier) = me.heartbeat.replace(heartbeat.ok()) {
                    earlier.clear();
                }
            }
        });
        let received = Closure::<dyn Fn(web_sys::MessageEvent)>::new({
            let current = current.clone();
            let ending = ending.clone();
            move |event: web_sys::MessageEvent| {
                let Some(me) = current() else { return };
                let data = event.data();
                if let Some(text) = data.as_string() {
                    match serde_json::from_str::<TerminalNotice>(&text) {
                        Ok(TerminalNotice::Pong) => {
                            if let Some(due) = me.pong_due.take() {
                                due.clear();
                            }
                        }
                        Ok(notice) => *ending.borrow_mut() = Some(notice),
                        Err(_) => {}
                    }
                } else if let Some((term, _)) = me.term.borrow().as_ref() {
                    term.write(&js_sys::Uint8Array::new(&data));
                }
            }
        });
        let closed = Closure::<dyn Fn()>::new(move || {
            let Some(me) = current() else { return };
            me.stop_heartbeat();
            match ending.borrow_mut().take() {
                Some(TerminalNotice::SessionEnded { message } | TerminalNotice::SignedOut { message }) => {
                    me.show(Link::Ended, &message)
                }
                Some(TerminalNotice::ServerShutdown { message }) => me.retry(Some(message)),
                Some(TerminalNotice::Pong) | None => me.retry(None),
            }
        });
        socket.set_onopen(Some(opened.as_ref().unchecked_ref()));
        socket.set_onmessage(Some(received.as_ref().unchecked_ref()));
        socket.set_onclose(Some(closed.as_ref().unchecked_ref()));
        self.keep((opened, received, closed));
        if let Some(old) = self.socket.replace(Some(socket)) {
            let _ = old.close();
        }
    }

    /// A ticket for the user's started session; `None` (said on the page) when there is no
    /// session to connect to, an error when the server could not be asked.
    async fn ticket(self: &Rc<Self>) -> Result<Option<TerminalTicket>, ()> {
        use gloo_net::http::Request;
        // A session still starting has no terminal yet: wait for it rather than ask for a ticket.
        // Missing after this tab had it (its socket closed before it heard why): it has ended.
        let missing = if self.was_connected.get() {
            "The session has ended."
        } else {
            "No session is running."
        };
        let status = Request::get("/api/session/status").send().await.map_err(drop)?;
        match status.status() {
            404 => {
                self.show(Link::Ended, missing);
                return Ok(None);
            }
            401 => {
                self.show(Link::Ended, "Sign in to use the terminal.");
                return Ok(None);
            }
            _ => {}
        }
        if status.ok()
            && status.json::<SessionView>().await.map_err(drop)?.status == SessionStatus::Provisioning
        {
            self.show(Link::Connecting, "Your session is starting…");
            let me = self.clone();
            set_timeout(move || me.connect(), STARTING_POLL);
            return Ok(None);
        }
        let response = Request::post("/api/terminal/ticket").send().await.map_err(drop)?;
        if response.status() == 404 {
            self.show(Link::Ended, missing);
            return Ok(None);
        }
        if !response.ok() {
            return Err(());
        }
        response.json().await.map(Some).map_err(drop)
    }

    fn retry(self: &Rc<Self>, message: Option<String>) {
        if self.is_over() {
            return;
        }
        let attempt = self.attempt.get();
        let wait = BACKOFF_MS[attempt.min(BACKOFF_MS.len() - 1)] * (0.75 + js_sys::Math::random() / 2.0);
        self.attempt.set(attempt + 1);
        self.show(
            Link::Reconnecting,
            message.as_deref().unwrap_or("Connection lost; reconnecting…"),
        );
        let me = self.clone();
        set_timeout(move || me.connect(), Duration::from_millis(wait as u64));
    }

    fn stop_heartbeat(&self) {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.clear();
        }
        if let Some(due) = self.pong_due.take() {
            due.clear();
        }
    }

    /// New text size; the terminal refits, so the shell hears its new columns and rows.
    fn set_font_size(&self, size: u32) {
        if let Some((term, fit)) = self.term.borrow().as_ref() {
            let _ = js_sys::Reflect::set(&term.options(), &"fontSize".into(), &size.into());
            fit.fit();
        }
    }

    /// Gone from the page (navigated away): the socket closes, the shell stays for next time.
    fn dispose(&self) {
        self.gone.set(true);
        self.stop_heartbeat();
        if let Some(socket) = self.socket.take() {
            let _ = socket.close();
        }
        if let Some(observer) = self.observer.take() {
            observer.disconnect();
        }
        if let Some((term, _)) = self.term.take() {
            term.dispose();
        }
    }
}

enum Frame<'a> {
    Bytes(&'a [u8]),
    Control(TerminalControl),
}

/// Loads xterm.js, its addons and its stylesheet from `/vendor`, once per page.
async fn load_vendor() -> Result<(), JsValue> {
    if js_sys::Reflect::has(&window(), &"Terminal".into())? {
        return Ok(());
    }
    give_styles_the_nonce(&document());
    load_assets(
        "Terminal",
        "xterm.css",
        &["xterm", "addon-fit", "addon-web-links"],
    )
    .await
}

/// Loads a stylesheet and scripts vendored under `/vendor` (in order), unless the page has
/// `global` already. The stylesheet is in force before the scripts run: what they measure or
/// read from it at start (sizes, the player's colours) is there.
pub(crate) async fn load_assets(global: &str, css: &str, scripts: &[&str]) -> Result<(), JsValue> {
    let document = document();
    if js_sys::Reflect::has(&window(), &global.into())? {
        return Ok(());
    }
    let head = document.head().ok_or("the page has no head")?;
    let link: web_sys::HtmlElement = document.create_element("link")?.unchecked_into();
    link.set_attribute("rel", "stylesheet")?;
    link.set_attribute("href", &format!("/vendor/{css}"))?;
    loaded(&head, &link).await?;
    for name in scripts {
        let script: web_sys::HtmlScriptElement = document.create_element("script")?.unchecked_into();
        script.set_src(&format!("/vendor/{name}.js"));
        loaded(&head, &script).await?;
    }
    Ok(())
}

/// Adds `element` to `head` and waits until what it names has loaded.
async fn loaded(head: &web_sys::HtmlHeadElement, element: &web_sys::HtmlElement) -> Result<(), JsValue> {
    let done = js_sys::Promise::new(&mut |resolve, reject| {
        element.set_onload(Some(&resolve));
        element.set_onerror(Some(&reject));
    });
    head.append_child(element)?;
    wasm_bindgen_futures::JsFuture::from(done).await?;
    Ok(())
}

/// xterm.js puts its theme and cell sizes in `<style>` elements it makes itself; the page's
/// policy admits only styles carrying the page's nonce, so each new `<style>` gets it.
fn give_styles_the_nonce(document: &web_sys::Document) {
    let nonce = document
        .query_selector("script[nonce]")
        .ok()
        .flatten()
        .and_then(|script| script.dyn_into::<web_sys::HtmlElement>().ok())
        .map(|script| script.nonce())
        .unwrap_or_default();
    let Ok(original) = js_sys::Reflect::get(document, &"createElement".into()) else {
        return;
    };
    let original: js_sys::Function = original.unchecked_into();
    let this = document.clone();
    let create = Closure::<dyn Fn(JsValue, JsValue) -> Result<JsValue, JsValue>>::new(
        move |tag: JsValue, options: JsValue| {
            let element = original.call2(&this, &tag, &options)?;
            if tag
                .as_string()
                .is_some_and(|tag| tag.eq_ignore_ascii_case("style"))
            {
                js_sys::Reflect::set(&element, &"nonce".into(), &nonce.as_str().into())?;
            }
            Ok(element)
        },
    );
    // The page's own `createElement`, for the page's life.
    let _ = js_sys::Reflect::set(document, &"createElement".into(), create.as_ref());
    create.forget();
}
