"""An independent HTTP/2 peer for the tunnel tests, on Python's h2 (Debian python3-h2; run with
/usr/bin/python3). Cleartext HTTP/2 with prior knowledge (h2c), one connection at a time.

  h2peer.py server [big]    listens on 127.0.0.1:0, prints "listening PORT"; for each stream
                            prints its request headers as one JSON line, answers 200, sends
                            "hello from h2\n", echoes every DATA frame, ends its side after the
                            client's END_STREAM. "big": 16 MiB windows.
  h2peer.py client PORT METHOD PATH-OR-AUTHORITY DATA [hold]
                            opens one stream (POST with :path, or CONNECT with :authority),
                            sends DATA and END_STREAM, prints "status N" then everything
                            received until the server's END_STREAM. With "hold": no
                            END_STREAM, 16 MiB windows; prints "holding" once data came
                            back, then keeps the stream open (the test freezes it with SIGSTOP).
  h2peer.py rst-flood PORT N a hostile client (rapid reset, CVE-2023-44487): opens N POST
                            streams on one connection, resetting each at once; prints
                            "goaway CODE" if the server sends GOAWAY, "sent K" with the
                            streams it got out, then "closed" when the connection ends.
  h2peer.py goaway-flood N  a hostile server: answers the first stream 200 with "hello from
                            h2\n", then sends N GOAWAY frames (NO_ERROR, legal per RFC 9113
                            §6.8: a sender may send several), then "after the flood\n" on the
                            stream, and keeps the connection open.
h2 4.1 knows only RFC 7540's request rules (:path and :scheme always), so header validation is
off where a plain CONNECT (RFC 9113 §8.5: :method and :authority only) passes through.
"""
import json
import socket
import struct
import sys

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings


def accepted():
    """Listens on 127.0.0.1:0, prints the port; yields each connection (one at a time) with its
    server-side h2 state, SETTINGS sent."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    print("listening", listener.getsockname()[1], flush=True)
    while True:
        sock, _ = listener.accept()
        conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False, validate_inbound_headers=False))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        yield sock, conn


def serve(big=False):
    for sock, conn in accepted():
        if big:
            # Large windows: a frozen server then has megabytes in flight toward it.
            conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 24})
            conn.increment_flow_control_window(1 << 24)
            sock.sendall(conn.data_to_send())
        while True:
            data = sock.recv(65536)
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    headers = {k.decode(): v.decode() for k, v in event.headers}
                    print(json.dumps(headers), flush=True)
                    conn.send_headers(event.stream_id, [(":status", "200")])
                    conn.send_data(event.stream_id, b"hello from h2\n")
                elif isinstance(event, h2.events.DataReceived):
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    conn.send_data(event.stream_id, event.data)
                elif isinstance(event, h2.events.StreamEnded):
                    conn.end_stream(event.stream_id)
            sock.sendall(conn.data_to_send())
        sock.close()


def goaway_flood(n):
    for sock, conn in accepted():
        flooded = False
        while True:
            data = sock.recv(65536)
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived) and not flooded:
                    flooded = True
                    conn.send_headers(event.stream_id, [(":status", "200")])
                    conn.send_data(event.stream_id, b"hello from h2\n")
                    sock.sendall(conn.data_to_send())
                    # GOAWAY by hand (h2 sends one at most): type 7, stream 0, last id, NO_ERROR.
                    frame = struct.pack(">I", 8)[1:] + bytes([7, 0]) + struct.pack(">III", 0, event.stream_id, 0)
                    sock.sendall(frame * n)
                    # Frames on one connection are read in order: this marks the flood's end.
                    conn.send_data(event.stream_id, b"after the flood\n")
                    print("flooded", n, flush=True)
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
        sock.close()


def rst_flood(port, n):
    sock = socket.create_connection(("127.0.0.1", int(port)))
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    headers = [(":method", "POST"), (":scheme", "http"), (":authority", "127.0.0.1:%s" % port), (":path", "/")]
    sent = 0
    try:
        for i in range(n):
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, headers)
            conn.reset_stream(sid)
            sent += 1
            if i % 100 == 99:
                sock.sendall(conn.data_to_send())
        sock.sendall(conn.data_to_send())
    except (OSError, h2.exceptions.ProtocolError):
        pass
    print("sent", sent, flush=True)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ConnectionTerminated):
                    print("goaway", event.error_code, flush=True)
    except (OSError, h2.exceptions.ProtocolError):
        pass
    print("closed", flush=True)


def client(port, method, target, payload, hold=False):
    sock = socket.create_connection(("127.0.0.1", int(port)))
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, validate_outbound_headers=False))
    conn.initiate_connection()
    if hold:
        # Large windows: a frozen client then has megabytes in flight toward it.
        conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 24})
        conn.increment_flow_control_window(1 << 24)
    if method == "CONNECT":
        headers = [(":method", "CONNECT"), (":authority", target)]
    else:
        headers = [(":method", method), (":scheme", "http"), (":authority", "127.0.0.1:%s" % port), (":path", target)]
    conn.send_headers(1, headers)
    conn.send_data(1, payload.encode(), end_stream=not hold)
    sock.sendall(conn.data_to_send())
    body = b""
    held = False
    while True:
        data = sock.recv(65536)
        if not data:
            break
        done = False
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                print("status", dict(event.headers)[b":status"].decode(), flush=True)
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, 1)
                body += event.data
                if hold and not held:
                    held = True
                    print("holding", flush=True)
            elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                done = True
        sock.sendall(conn.data_to_send())
        if done:
            break
    sys.stdout.write(body.decode())
    conn.close_connection()
    sock.sendall(conn.data_to_send())
    sock.close()


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(sys.argv[2:3] == ["big"])
    elif sys.argv[1] == "rst-flood":
        rst_flood(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "goaway-flood":
        goaway_flood(int(sys.argv[2]))
    else:
        client(*sys.argv[2:6], hold=sys.argv[6:7] == ["hold"])
