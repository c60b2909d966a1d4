//! The practice page: the learner's terminal. `/terminal.js` attaches xterm.js to the element
//! marked `data-terminal` and keeps it connected; the status line says how the connection is.

use leptos::prelude::*;

#[component]
pub fn PracticePage() -> impl IntoView {
    view! {
        <section class="practice">
            <div class="terminal-pane">
                <p class="terminal-status" data-terminal-status role="status">"Connecting…"</p>
                <div class="terminal" data-terminal></div>
            </div>
        </section>
    }
}
