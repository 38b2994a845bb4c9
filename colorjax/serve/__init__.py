"""``colorjax serve``'s web page: people's photos colorized in the browser (Gradio)."""
