"""The page under a real batch: drop the 150 Q2 clips of 4Q and a generated 12-minute WAV into
`mer serve` in headless Chromium (Playwright); print how long until every row is done, the
server's peak memory, and the progress values the long file showed.

    python -m benchmarks.serve_batch --data ../shared/data   # needs Chromium (/usr/bin/chromium)
"""
import argparse
import os
import socket
import subprocess
import sys
import time

import numpy as np
import soundfile as sf

from benchmarks._data import data_parser, data_root
from mer import synth


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[data_parser()])
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    long = '/tmp/long-12min.wav'
    if not os.path.exists(long):
        sf.write(long, np.tile(synth.clip(0.3, -0.3, 30.0, 44100, seed=5), 24), 44100)
    srv = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), 'mer'), 'serve', '--port', str(port)], stderr=subprocess.PIPE, text=True)
    print(srv.stderr.readline().strip())
    files = sorted(str(p) for p in (data_root(args) / '4q-dev' / 'Q2').glob('*.mp3')) + [long]
    t0, peak, progress_seen = time.time(), 0, set()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path='/usr/bin/chromium', args=['--no-sandbox'])
        page = b.new_page(viewport={'width': 1280, 'height': 900})
        page.goto(f'http://127.0.0.1:{port}/')
        while not page.evaluate("document.querySelector('#model').textContent.length > 0"):  # not wait_for_function:
            time.sleep(0.05)  # it evals its string in the page, which the page's CSP forbids
        page.set_input_files('#files', files)
        while True:
            st = page.evaluate("(() => { const j=[...window.merState.jobs.values()]; return {n:j.length, done:j.filter(x=>x.state==='done').length, err:j.filter(x=>x.state==='error').length, longp: (j.find(x=>x.name.startsWith('long'))||{}).progress} })()")
            peak = max(peak, int(open(f'/proc/{srv.pid}/status').read().split('VmRSS:')[1].split()[0]))
            if st['longp'] is not None:
                progress_seen.add(round(st['longp'], 2))
            if st['n'] == len(files) and st['done'] + st['err'] == st['n']:
                break
            time.sleep(0.3)
        print(st, 'wall %.1f s' % (time.time() - t0))
        hwm = open(f'/proc/{srv.pid}/status').read().split('VmHWM:')[1].split()[0]
        print('server peak RSS (VmHWM) %d MB' % (int(hwm) // 1024), 'long-file progress values seen:', sorted(progress_seen)[:12])
        b.close()
    srv.send_signal(2)
    print('server exit', srv.wait(timeout=30))


if __name__ == "__main__":
    main()
