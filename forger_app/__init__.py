"""The Gradio app's code beside its layout (app.py): handlers, uploads, sessions and UI text."""
