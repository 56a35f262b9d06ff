#!/usr/bin/env python3
"""The reference library's side of scripts/notify-interop.sh (eventsourcing 7.1.1).

  serve PORT N   an application with N AggregateRoot.Created events whose notification log
                 is served by NotificationLogView at http://127.0.0.1:PORT/<section id>/
  read URL N     reads the log at URL with RemoteNotificationLog + NotificationLogReader and
                 checks it holds N notifications numbered 1..N with UUID originator ids
"""
import sys
import uuid


def serve(port, n):
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from eventsourcing.application.sqlalchemy import SQLAlchemyApplication
    from eventsourcing.domain.model.aggregate import AggregateRoot
    from eventsourcing.interface.notificationlog import NotificationLogView

    app = SQLAlchemyApplication(persist_event_type=AggregateRoot.Event)
    for _ in range(n):
        AggregateRoot.__create__().__save__()
    view = NotificationLogView(app.notification_log)

    def wsgi(environ, start_response):
        try:
            body, _ = view.present_section(environ["PATH_INFO"].strip("/"))
        except Exception as e:  # bad section ids
            start_response("400 Bad Request", [("Content-type", "text/plain")])
            return [str(e).encode()]
        start_response("200 OK", [("Content-type", "application/json")])
        return [body.encode("utf8")]

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
    else:
        read(sys.argv[2], int(sys.argv[3]))
