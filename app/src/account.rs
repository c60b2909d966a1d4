//! Signing in and out: the pages, the user menu, and the server functions behind them. The server
//! functions are thin: each takes the [`crate::ports::Accounts`] implementation from context (the server
//! provides it) and calls it.

use crate::api::UserView;
use leptos::prelude::*;
use leptos_router::components::A;

#[cfg(feature = "ssr")]
pub(crate) mod server {
    //! Reaching the server's `Accounts` and the request from inside a server function.
    use std::sync::Arc;

    use leptos::prelude::*;

    use crate::ports::{Accounts, Refusal, SignedIn};

    pub fn accounts() -> Result<Arc<dyn Accounts>, ServerFnError> {
        use_context::<Arc<dyn Accounts>>().ok_or_else(|| ServerFnError::new("accounts are not available"))
    }

    pub fn headers() -> http::HeaderMap {
        use_context::<http::request::Parts>()
            .map(|parts| parts.headers)
            .unwrap_or_default()
    }

    /// Answers with the refusal's status and sentence.
    pub fn refuse(refusal: Refusal) -> ServerFnError {
        expect_context::<leptos_axum::ResponseOptions>().set_status(refusal.status);
        ServerFnError::new(refusal.message)
    }

    /// Sets the sign-in cookies and sends the browser home.
    pub fn finish(signed: Result<SignedIn, Refusal>) -> Result<(), ServerFnError> {
        let signed = signed.map_err(refuse)?;
        let response = expect_context::<leptos_axum::ResponseOptions>();
        for cookie in signed.cookies {
            response.append_header(http::header::SET_COOKIE, cookie);
        }
        leptos_axum::redirect("/");
        Ok(())
    }
}

/// Asked by every page: under `/api/pages`, so that it never spends the sign-in budget.
#[server(prefix = "/api/pages")]
pub async fn current_user() -> Result<Option<UserView>, ServerFnError> {
    Ok(server::accounts()?.current_user(&server::headers()).await)
}

#[server(prefix = "/api/auth")]
pub async fn request_code(email: String) -> Result<String, ServerFnError> {
    server::accounts()?
        .request_code(&email)
        .await
        .map_err(server::refuse)?;
    Ok(email)
}

#[server(prefix = "/api/auth")]
pub async fn verify_code(email: String, code: String) -> Result<(), ServerFnError> {
    server::finish(server::accounts()?.verify_code(&email, &code).await)
}

#[server(prefix = "/api/auth")]
pub async fn log_in(email: String, password: String) -> Result<(), ServerFnError> {
    server::finish(server::accounts()?.log_in(&email, &password).await)
}

/// Mails a code to prove the email; answers the email it went to.
#[server(prefix = "/api/auth")]
pub async fn register(email: String, password: String) -> Result<String, ServerFnError> {
    server::accounts()?
        .register(&email, &password)
        .await
        .map_err(server::refuse)?;
    Ok(email)
}

/// Sets the password with the mailed code (the end of a registration, or a reset) and signs in.
#[server(prefix = "/api/auth")]
pub async fn set_password(
    email: String,
    code: String,
    password: String,
    name: String,
) -> Result<(), ServerFnError> {
    server::finish(
        server::accounts()?
            .set_password(&email, &code, &password, &name)
            .await,
    )
}

#[server(prefix = "/api/auth")]
pub async fn sign_out_everywhere() -> Result<(), ServerFnError> {
    let cleared = server::accounts()?
        .sign_out_everywhere(&server::headers())
        .await
        .map_err(server::refuse)?;
    let response = expect_context::<leptos_axum::ResponseOptions>();
    for cookie in cleared {
        response.append_header(http::header::SET_COOKIE, cookie);
    }
    leptos_axum::redirect("/");
    Ok(())
}

#[server(prefix = "/api/auth")]
pub async fn sign_out() -> Result<(), ServerFnError> {
    let cleared = server::accounts()?.sign_out(&server::headers()).await;
    let response = expect_context::<leptos_axum::ResponseOptions>();
    for cookie in cleared {
        response.append_header(http::header::SET_COOKIE, cookie);
    }
    leptos_axum::redirect("/");
    Ok(())
}

/// A server function's failure as a sentence for the person in front of the page.
pub(crate) fn error_text(error: &ServerFnError) -> String {
    let message = match error {
        ServerFnError::ServerError(message) => message.as_str(),
        _ => "something went wrong; try again",
    };
    let mut chars = message.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The error of an action's last run, shown under its form.
fn form_error<T>(
    value: impl Get<Value = Option<Result<T, ServerFnError>>> + Send + Sync + 'static,
) -> impl IntoView
where
    T: Clone + Send + Sync + 'static,
{
    move || {
        value
            .get()
            .and_then(Result::err)
            .map(|e| view! { <p class="form-error" role="alert">{error_text(&e)}</p> })
    }
}

/// The right end of the top bar: who is signed in, or a way to sign in.
#[component]
pub fn UserMenu() -> impl IntoView {
    let sign_out = ServerAction::<SignOut>::new();
    // Sign-in forms redirect to another page and sign-out completes an action: either way the
    // menu asks again who is signed in.
    let path = leptos_router::hooks::use_location().pathname;
    let user = Resource::new(move || (path.get(), sign_out.version().get()), |_| current_user());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match user.await {
                    Ok(Some(user)) => view! {
                        <A href="/dashboard" attr:class="nav-link">"Dashboard"</A>
                        <span class="user-name">{user.display_name().to_owned()}</span>
                        <ActionForm action=sign_out attr:class="inline">
                            <button type="submit" class="link-button">"Sign out"</button>
                        </ActionForm>
                    }.into_any(),
                    _ => view! { <A href="/signin" attr:class="nav-link">"Sign in"</A> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The sentence for a refused Google sign-in, by the reason the server names.
fn google_refusal(reason: &str) -> &'static str {
    match reason {
        "cancelled" => "The Google sign-in was cancelled.",
        "expired" => {
            "This sign-in link has expired, was already used, or was started in another browser: start again."
        }
        "unverified" => "Your Google account's email is not verified.",
        "unavailable" => "Google sign-in is not configured on this server.",
        _ => "The Google sign-in did not complete: try again.",
    }
}

#[component]
pub fn SignInPage() -> impl IntoView {
    let request = ServerAction::<RequestCode>::new();
    let verify = ServerAction::<VerifyCode>::new();
    let password = ServerAction::<LogIn>::new();
    // The email a code was sent to, once one was.
    let sent_to = move || request.value().get().and_then(Result::ok);
    // Why a Google sign-in came back refused, if it did: one of our sentences, never the query's.
    let query = leptos_router::hooks::use_query_map();
    let refused = move || query.read().get("error").map(|code| google_refusal(&code));

    view! {
        <section class="auth-page">
            <h1>"Sign in"</h1>
            {move || refused().map(|reason| view! { <p class="form-error" role="alert">{reason}</p> })}
            <a class="google-button" href="/api/auth/google" rel="external">"Continue with Google"</a>
            <div class="auth-methods">
                <div class="auth-card">
                    <h2>"Email me a code"</h2>
                    <Show
                        when=move || sent_to().is_some()
                        fallback=move || view! {
                            <ActionForm action=request>
                                <label>"Email" <input type="email" name="email" required autocomplete="email"/></label>
                                <button type="submit" disabled=move || request.pending().get()>"Send code"</button>
                            </ActionForm>
                            {form_error(request.value())}
                        }
                    >
                        <p class="hint">"We sent a 6-digit code to " <strong>{sent_to}</strong> ". It works once, for 10 minutes."</p>
                        <ActionForm action=verify>
                            <input type="hidden" name="email" prop:value=move || sent_to().unwrap_or_default()/>
                            <label>"Code" <input name="code" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" required autocomplete="one-time-code"/></label>
                            <button type="submit" disabled=move || verify.pending().get()>"Sign in"</button>
                        </ActionForm>
                        {form_error(verify.value())}
                    </Show>
                </div>
                <div class="auth-card">
                    <h2>"Password"</h2>
                    <ActionForm action=password>
                        <label>"Email" <input type="email" name="email" required autocomplete="email"/></label>
                        <label>"Password" <input type="password" name="password" required autocomplete="current-password"/></label>
                        <button type="submit" disabled=move || password.pending().get()>"Sign in"</button>
                    </ActionForm>
                    {form_error(password.value())}
                    <p class="hint">"New here, or forgot your password? " <A href="/signup">"Set a password"</A></p>
                </div>
            </div>
        </section>
    }
}

/// A password account in two steps: the form mails a code to the email, and the code (which
/// proves the email) sets the password and signs in. An email that already has an account gets
/// its password replaced the same way: this is also the password reset.
#[component]
pub fn SignUpPage() -> impl IntoView {
    let register = ServerAction::<Register>::new();
    let set_password = ServerAction::<SetPassword>::new();
    let (name, email, password) = (
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
    );
    // The email a code was sent to, once one was.
    let sent_to = move || register.value().get().and_then(Result::ok);
    view! {
        <section class="auth-page">
            <h1>"Create an account"</h1>
            <div class="auth-card">
                <Show
                    when=move || sent_to().is_some()
                    fallback=move || view! {
                        <ActionForm action=register>
                            <label>"Name" <input name="name" autocomplete="name" bind:value=name/></label>
                            <label>"Email" <input type="email" name="email" required autocomplete="email" bind:value=email/></label>
                            <label>"Password (10 characters or more)" <input type="password" name="password" required minlength="10" autocomplete="new-password" bind:value=password/></label>
                            <button type="submit" disabled=move || register.pending().get()>"Create account"</button>
                        </ActionForm>
                        {form_error(register.value())}
                    }
                >
                    <p class="hint">"We sent a 6-digit code to " <strong>{sent_to}</strong> " to prove the address is yours. It works once, for 10 minutes."</p>
                    <ActionForm action=set_password>
                        <input type="hidden" name="email" prop:value=move || sent_to().unwrap_or_default()/>
                        <input type="hidden" name="name" prop:value=name/>
                        <input type="hidden" name="password" prop:value=password/>
                        <label>"Code" <input name="code" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" required autocomplete="one-time-code"/></label>
                        <button type="submit" disabled=move || set_password.pending().get()>"Confirm"</button>
                    </ActionForm>
                    {form_error(set_password.value())}
                </Show>
                <p class="hint">"Already have one? " <A href="/signin">"Sign in"</A>". Setting a password here replaces the old one once the code proves the email."</p>
            </div>
        </section>
    }
}

/// Ends every sign-in of the learner, on every device.
#[component]
pub fn EndEverySignIn() -> impl IntoView {
    let action = ServerAction::<SignOutEverywhere>::new();
    view! {
        <ActionForm action attr:class="inline">
            <button type="submit" class="link-button">"End every sign-in on every device"</button>
        </ActionForm>
        {form_error(action.value())}
    }
}
