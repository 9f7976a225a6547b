"""Asterisk's AudioSocket: a call's audio, both ways, over TCP.

`protocol` is the wire format (a pure codec), `port` the `AudioLink` port the IVR's listening turn uses
(and `FakeAudioLink` beside it), `server` the server Asterisk connects to, `client` Asterisk's side for
tests, the console caller and benchmarks.
"""
