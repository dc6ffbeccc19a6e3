"""Content Security result callbacks: verified, written beside the source, then acknowledged with 200.

FC 2.0 HTTP trigger (WSGI): ``index.handler``. FC 3.0 HTTP trigger (an event with ``body``,
``isBase64Encoded``, ``headers``): ``index.handler_fc3``. All logic lives in fcocr.recognizers.green.callback.
"""

from fcocr.recognizers.green.callback import handle_fc3_event, handle_wsgi


def handler(environ, start_response):
    return handle_wsgi(environ, start_response)


def handler_fc3(event, context):
    return handle_fc3_event(event, context)
