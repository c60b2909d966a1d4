//! The Leptos side of the platform: pages, components and the view types that cross the wire.
//! Built twice: with `ssr` into the server, with `hydrate` into the browser's wasm bundle.

pub mod account;
mod admin;
pub mod api;
pub mod billing;
mod dashboard;
pub mod exams;
mod home;
mod live;
mod modal;
#[cfg(feature = "ssr")]
pub mod ports;
mod practice;
mod replay;
pub mod session;
mod terminal;
mod toast;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    ParamSegment, SsrMode, StaticSegment,
};

/// The HTML document around the app. Rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    toast::provide_toasts();
    view! {
        <Stylesheet id="leptos" href="/pkg/ckad.css"/>
        <Title text="CKAD Practice"/>
        <Router>
            <header class="topbar">
                <a class="brand" href="/">"CKAD Practice"</a>
                <a class="nav-link" href="/exams">"Mock exams"</a>
                <a class="nav-link" href="/pricing">"Pricing"</a>
                <nav class="user-menu">
                    <account::UserMenu/>
                </nav>
            </header>
            <main>
                <Routes fallback=NotFound>
                    <Route path=StaticSegment("") view=home::HomePage/>
                    <Route path=StaticSegment("signin") view=account::SignInPage/>
                    <Route path=StaticSegment("signup") view=account::SignUpPage/>
                    <Route path=StaticSegment("dashboard") view=dashboard::DashboardPage/>
                    <Route path=StaticSegment("practice") view=practice::PracticePage/>
                    // Rendered whole before answering, so that a refusal answers 403.
                    <Route path=StaticSegment("admin") view=admin::AdminPage ssr=SsrMode::Async/>
                    <Route path=StaticSegment("exams") view=exams::ExamsPage/>
                    <Route path=(StaticSegment("exams"), StaticSegment("results"), ParamSegment("session")) view=exams::ExamResultPage/>
                    <Route path=(StaticSegment("replay"), ParamSegment("session")) view=replay::ReplayPage/>
                    <Route path=StaticSegment("pricing") view=billing::PricingPage/>
                    <Route path=(StaticSegment("payment"), StaticSegment("success")) view=billing::PaymentSuccessPage/>
                </Routes>
            </main>
            <toast::ToastRegion/>
        </Router>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <section class="not-found">
            <h1>"Page not found"</h1>
            <p><a href="/">"Back to the start page"</a></p>
        </section>
    }
}

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
