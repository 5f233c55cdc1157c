"""``optical serve``: a local web page over :mod:`optical.search` and :mod:`optical.align`.

A search box and collection picker; results with their dense and MaxSim scores side by
side; for a clicked result, the OT plan between the query's tokens (student) and the
document's tokens (teacher) as a heatmap. The page is static HTML, CSS and JavaScript
shipped in the package (no CDN, no call off the machine); the app is FastAPI
(:func:`optical.serve.app.create_app`) served by uvicorn on 127.0.0.1 by default.
Needs the ``serve`` extra: ``pip install 'optical[serve]'``.
"""
