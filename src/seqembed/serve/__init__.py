"""``seqembed serve``: models loaded once, asked many times over HTTP.

settings   ServeSettings (serve.* keys, each with its range)
models     ServedModel: the one seam to the library (translate, attention,
           encoder states, embedding tables)
workers    one worker per model: its process (model_process) runs the
           model, micro-batching translations; this side awaits it
explore    neighbours, similarity, analogy beside their chance levels
compare    the embedding map, and two spaces side by side
http       errors as JSON, the body limit, security headers
page       the explorer page and its assets (static/)
app        the FastAPI routes
server     bind, load, serve, stop on SIGTERM / Ctrl-C
"""
