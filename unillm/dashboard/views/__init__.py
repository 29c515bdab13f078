"""The dashboard's pages: each `render(context)` draws one page from its queries' results."""
