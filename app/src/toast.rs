//! Toasts: short messages in a corner of the page that go away by themselves, for errors that have
//! no form to sit under and for news such as "10 minutes left".

use std::time::Duration;

use leptos::prelude::*;

const SHOWN_FOR: Duration = Duration::from_secs(8);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Toast {
    id: u64,
    text: String,
    error: bool,
}

/// The page's toasts; every page reaches them with [`use_toasts`].
#[derive(Debug, Clone, Copy)]
pub struct Toasts {
    shown: RwSignal<Vec<Toast>>,
    next_id: StoredValue<u64>,
}

impl Toasts {
    pub fn error(&self, text: impl Into<String>) {
        self.push(text.into(), true);
    }

    pub fn info(&self, text: impl Into<String>) {
        self.push(text.into(), false);
    }

    fn push(&self, text: String, error: bool) {
        let id = self.next_id.get_value();
        self.next_id.set_value(id + 1);
        self.shown.update(|shown| shown.push(Toast { id, text, error }));
        let this = *self;
        set_timeout(move || this.dismiss(id), SHOWN_FOR);
    }

    fn dismiss(&self, id: u64) {
        self.shown
            .try_update(|shown| shown.retain(|toast| toast.id != id));
    }
}

pub fn provide_toasts() {
    provide_context(Toasts {
        shown: RwSignal::new(Vec::new()),
        next_id: StoredValue::new(0),
    });
}

pub fn use_toasts() -> Toasts {
    expect_context::<Toasts>()
}

/// Where toasts appear; once per page, in the app's frame.
#[component]
pub fn ToastRegion() -> impl IntoView {
    let toasts = use_toasts();
    view! {
        <div class="toasts" aria-live="polite">
            <For each=move || toasts.shown.get() key=|toast| toast.id let:toast>
                <div class="toast" class:error=toast.error role=if toast.error { "alert" } else { "status" }>
                    <span>{toast.text.clone()}</span>
                    <button
                        class="toast-close"
                        aria-label="Dismiss"
                        on:click=move |_| toasts.dismiss(toast.id)
                    >"×"</button>
                </div>
            </For>
        </div>
    }
}
