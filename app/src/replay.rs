//! The replay page (`/replay/{session}`): the session's terminal recording in asciinema-player
//! (vendored from npm, served under `/vendor`, loaded when the page opens), showing its first
//! frame, with the learner's task switches and Checks as chapters to jump to.

use leptos::{html, prelude::*, task::spawn_local};
use leptos_router::{components::A, hooks::use_params_map};
use send_wrapper::SendWrapper;
use wasm_bindgen::{prelude::wasm_bindgen, JsValue};

use crate::api::{CastEvent, CastHeader};

#[wasm_bindgen]
extern "C" {
    /// A player made by `AsciinemaPlayer.create`, a page global once its script has loaded.
    #[derive(Clone)]
    type Player;
    #[wasm_bindgen(js_namespace = AsciinemaPlayer, js_name = create)]
    fn create_player(src: &JsValue, element: &web_sys::HtmlElement, options: &JsValue) -> Player;
    #[wasm_bindgen(method)]
    fn seek(this: &Player, location: &JsValue) -> js_sys::Promise;
    #[wasm_bindgen(method)]
    fn dispose(this: &Player);
}

/// Pauses longer than this play as this long: a learner reading a task is not worth watching.
const IDLE_LIMIT: f64 = 2.0;
/// The first frame shown: this long after the first output, once the prompt is drawn.
const FIRST_FRAME_AFTER: f64 = 1.0;

/// What the page knows of a recording once fetched.
#[derive(Debug, Clone, PartialEq)]
enum Loaded {
    Loading,
    Missing(String),
    Ready { chapters: Vec<String> },
}

#[component]
pub fn ReplayPage() -> impl IntoView {
    let params = use_params_map();
    let host = NodeRef::<html::Div>::new();
    let loaded = RwSignal::new(Loaded::Loading);
    // Only ever set in the browser (see `terminal::Terminal`).
    let player = StoredValue::new(None::<SendWrapper<Player>>);
    Effect::new(move |_| {
        let Some(element) = host.get() else {
            return;
        };
        let session = params.read().get("session").unwrap_or_default();
        spawn_local(async move {
            match show(&session, &element).await {
                Ok((made, chapters)) => {
                    player.set_value(Some(SendWrapper::new(made)));
                    loaded.set(Loaded::Ready { chapters });
                }
                Err(message) => loaded.set(Loaded::Missing(message)),
            }
        });
        on_cleanup(move || {
            if let Some(player) = player.try_update_value(Option::take).flatten() {
                player.dispose();
            }
        });
    });
    let jump = move |index: usize| {
        player.with_value(|player| {
            if let Some(player) = player {
                let location = js_sys::Object::new();
                let _ = js_sys::Reflect::set(&location, &"marker".into(), &(index as f64).into());
                // The first frame moves the player's position without its screen: a seek forward
                // from there draws only what came after it, on a cleared screen. A seek to the
                // start first (queued, as every call) puts both back at the start.
                let _ = player.seek(&0.into());
                let _ = player.seek(&location);
            }
        });
    };
    let state = move || match loaded.get() {
        Loaded::Loading => "loading",
        Loaded::Missing(_) => "missing",
        Loaded::Ready { .. } => "ready",
    };
    view! {
        <section class="replay">
            <h1>"Your terminal, again"</h1>
            <p class="hint">"Replayed as it happened; pauses are shortened to two seconds."</p>
            {move || match loaded.get() {
                Loaded::Missing(message) => view! { <p class="form-error" role="alert">{message}</p> }.into_any(),
                Loaded::Ready { chapters } if !chapters.is_empty() => view! {
                    <nav class="chapters" aria-label="Chapters">
                        <ol>
                            {chapters.into_iter().enumerate().map(|(index, label)| view! {
                                <li><button class="chapter" on:click=move |_| jump(index)>{label}</button></li>
                            }).collect_view()}
                        </ol>
                    </nav>
                }.into_any(),
                _ => ().into_any(),
            }}
            <div class="replay-player" data-replay data-state=state node_ref=host></div>
            <p><A href="/dashboard">"Back to your sessions"</A></p>
        </section>
    }
}

/// Fetches the recording and plays it in `element`: the player and the chapters' labels, or a
/// sentence for the page.
async fn show(session: &str, element: &web_sys::HtmlElement) -> Result<(Player, Vec<String>), String> {
    use gloo_net::http::Request;
    let unreachable = |_| "The recording could not be loaded; try again.".to_owned();
    let response = Request::get(&format!("/api/replays/{}", js_sys::encode_uri_component(session)))
        .send()
        .await
        .map_err(unreachable)?;
    match response.status() {
        200 => {}
        401 => return Err("Sign in to watch your sessions.".into()),
        404 => return Err("There is no recording of this session.".into()),
        _ => return Err("The recording could not be loaded; try again.".into()),
    }
    let cast = response.text().await.map_err(unreachable)?;
    let mut lines = cast.lines();
    lines
        .next()
        .and_then(|header| serde_json::from_str::<CastHeader>(header).ok())
        .ok_or("This recording cannot be read.")?;
    let events: Vec<CastEvent> = lines.filter_map(|line| serde_json::from_str(line).ok()).collect();
    let chapters = events
        .iter()
        .filter(|CastEvent(_, code, _)| code == "m")
        .map(|CastEvent(_, _, label)| label.clone())
        .collect();
    let first_output = events
        .iter()
        .find(|CastEvent(_, code, _)| code == "o")
        .map_or(0.0, |CastEvent(at, _, _)| *at);

    crate::terminal::load_assets(
        "AsciinemaPlayer",
        "asciinema-player.css",
        &["asciinema-player.min"],
    )
    .await
    .map_err(|_| "The player could not load; reload the page.".to_owned())?;
    let source = js_sys::Object::new();
    js_sys::Reflect::set(&source, &"data".into(), &cast.into()).map_err(|_| "no player")?;
    let options = serde_json::json!({
        "idleTimeLimit": IDLE_LIMIT,
        "preload": true,
        "fit": "width",
        "poster": format!("npt:{:.3}", first_output.min(IDLE_LIMIT) + FIRST_FRAME_AFTER),
        // Ours (style/main.css): readable on the dark background, bold as the live terminal
        // draws it.
        "theme": "ckad",
        "boldIsBright": true,
    });
    let options = js_sys::JSON::parse(&options.to_string()).unwrap_or_default();
    Ok((create_player(&source, element, &options), chapters))
}
