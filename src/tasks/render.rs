//! Markdown to HTML a page can show as it is: rendered with pulldown-cmark, then sanitized with
//! ammonia so that a task's text can never carry script into the learner's page.

use pulldown_cmark::{html, Options, Parser};

pub fn markdown(text: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let mut unsafe_html = String::new();
    html::push_html(&mut unsafe_html, Parser::new_ext(text, options));
    ammonia::clean(&unsafe_html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_rendered_and_script_removed() {
        let html = markdown("Run `kubectl get pods` <script>alert(1)</script>\n\n[x](javascript:alert(1))");
        assert!(html.contains("<code>kubectl get pods</code>"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
    }
}
