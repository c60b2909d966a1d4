"""A real SMTP server for tests: accepts every message on 127.0.0.1:PORT and appends it to
MAILBOX as one JSON line ({"from", "to", "data"}). Prints "ready" once it listens."""
import json
import signal
import sys

from aiosmtpd.controller import Controller


class Mailbox:
    def __init__(self, path):
        self.path = path

    async def handle_DATA(self, server, session, envelope):
        message = {"from": envelope.mail_from, "to": envelope.rcpt_tos, "data": envelope.content.decode()}
        with open(self.path, "a", encoding="utf-8") as mailbox:
            mailbox.write(json.dumps(message) + "\n")
        return "250 OK"


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Mailbox(path), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


if __name__ == "__main__":
    main()
