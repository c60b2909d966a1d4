//! A modal dialog over the page.

use leptos::{ev, html, prelude::*};
use wasm_bindgen::JsCast;

/// A modal dialog: focus moves to its `data-primary` button; Escape closes it.
#[component]
pub fn Modal(
    title: &'static str,
    on_close: impl Fn() + Copy + Send + Sync + 'static,
    children: Children,
) -> impl IntoView {
    let node = NodeRef::<html::Div>::new();
    Effect::new(move |_| {
        if let Some(primary) = node
            .get()
            .and_then(|dialog| dialog.query_selector("[data-primary]").ok().flatten())
            .and_then(|button| button.dyn_into::<web_sys::HtmlElement>().ok())
        {
            let _ = primary.focus();
        }
    });
    view! {
        <div class="modal-backdrop">
            <div
                class="modal"
                role="dialog"
                aria-modal="true"
                aria-labelledby="modal-title"
                node_ref=node
                on:keydown=move |event: ev::KeyboardEvent| {
                    if event.key() == "Escape" {
                        on_close();
                    }
                }
            >
                <h2 id="modal-title">{title}</h2>
                {children()}
            </div>
        </div>
    }
}
