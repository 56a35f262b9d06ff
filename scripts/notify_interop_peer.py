#!/usr/bin/env python3
"""The reference library's side of scripts/notify-interop.sh (eventsourcing 7.1.1).

  serve PORT N   an application with N AggregateRoot.Created events whose notification log
                 is served by NotificationLogView at http://127.0.0.1:PORT/<section id>/
  read URL N     reads the log at URL with RemoteNotificationLog + NotificationLogReader and
                 checks it holds N notifications numbered 1..N with UUID originator ids
  bench N        times reading a log of N notifications with NotificationLogReader, locally
                 (SQLAlchemyApplication, SQLite file) and over HTTP (wsgiref server in a
                 thread); prints RESULT lines like examples/bench_read_log.rs
"""
import sys
import uuid


def make_app(n):
    # A file, so the HTTP server's thread sees the same database.
    import os
    import tempfile

    os.environ.setdefault("DB_URI", "sqlite:///" + os.path.join(tempfile.mkdtemp(), "es.db"))
    from eventsourcing.application.sqlalchemy import SQLAlchemyApplication
    from eventsourcing.domain.model.aggregate import AggregateRoot

    app = SQLAlchemyApplication(persist_event_type=AggregateRoot.Event)
    for _ in range(n):
        AggregateRoot.__create__().__save__()
    return app


def wsgi_app(notification_log):
    from eventsourcing.interface.notificationlog import NotificationLogView

    view = NotificationLogView(notification_log)

    def wsgi(environ, start_response):
        try:
            body, _ = view.present_section(environ["PATH_INFO"].strip("/"))
        except Exception as e:  # bad section ids
            start_response("400 Bad Request", [("Content-type", "text/plain")])
            return [str(e).encode()]
        start_response("200 OK", [("Content-type", "application/json")])
        return [body.encode("utf8")]

    return wsgi


def bench(n):
    import threading
    import time
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from eventsourcing.interface.notificationlog import NotificationLogReader, RemoteNotificationLog

    app = make_app(n)

    def report(name, count, seconds):
        print("RESULT read_log %s %d %.6f %.1f" % (name, count, seconds, count / seconds))

    t = time.perf_counter()
    count = len(NotificationLogReader(app.notification_log).read_list())
    report("sqlite-file", count, time.perf_counter() - t)

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = make_server("127.0.0.1", 0, wsgi_app(app.notification_log), handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d" % server.server_port
    t = time.perf_counter()
    count = len(NotificationLogReader(RemoteNotificationLog(url)).read_list())
    report("http", count, time.perf_counter() - t)
    server.shutdown()


def serve(port, n):
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    wsgi = wsgi_app(make_app(n).notification_log)

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    print("serving", flush=True)
    make_server("127.0.0.1", port, wsgi, handler_class=Quiet).serve_forever()


def read(url, n):
    from eventsourcing.interface.notificationlog import NotificationLogReader, RemoteNotificationLog

    reader = NotificationLogReader(RemoteNotificationLog(url))
    items = reader.read_list()
    ids = [i["id"] for i in items]
    assert ids == list(range(1, n + 1)), ids
    assert all(isinstance(i["originator_id"], uuid.UUID) for i in items)
    assert all(isinstance(i["state"], str) and isinstance(i["topic"], str) for i in items)
    assert sorted(items[0]) == [
        "causal_dependencies", "id", "originator_id", "originator_version", "state", "topic"
    ], sorted(items[0])
    assert reader.read_list() == []
    print("python read %d notifications from es; position %d" % (len(items), reader.position))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1] == "bench":
        bench(int(sys.argv[2]))
    else:
        read(sys.argv[2], int(sys.argv[3]))
