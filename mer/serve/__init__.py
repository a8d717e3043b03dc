"""``mer serve``: a web page to hear and see a song's emotion (optional extra ``[serve]``).

- :mod:`mer.serve.jobs`: the bounded prediction queue (one model, a few threads, private uploads)
  and the streaming upload reader (bytes counted as they arrive, nothing kept of a refused one);
- :mod:`mer.serve.app`: the FastAPI app (JSON API under ``/api/``, the page in ``static/``), the
  guard every request passes (its own Host names only, same-origin uploads, the token, security
  headers) and :func:`~mer.serve.app.run` (uvicorn on a socket ``mer serve`` bound, with a
  deadline for each request's headers);
- ``static/``: the page (``index.html``, ``app.js``, ``style.css``) and the vendored libraries
  (wavesurfer.js, BSD-3-Clause; Chart.js, MIT; licences beside them).

Import :mod:`mer.serve.app` only where FastAPI is installed (``pip install 'mer-toolkit[serve]'``).
"""
