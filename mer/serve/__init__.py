"""``mer serve``: a web page to hear and see a song's emotion (optional extra ``[serve]``).

- :mod:`mer.serve.jobs`: the bounded prediction queue (one model, a few threads, private uploads);
- :mod:`mer.serve.app`: the FastAPI app (JSON API under ``/api/``, the page in ``static/``);
- ``static/``: the page (``index.html``, ``app.js``, ``style.css``) and the vendored libraries
  (wavesurfer.js, BSD-3-Clause; Chart.js, MIT; licences beside them).

Import :mod:`mer.serve.app` only where FastAPI is installed (``pip install 'mer-toolkit[serve]'``).
"""
