"""FC handlers for OSS uploads: every record of the trigger event becomes a result document.

All logic lives in the fcocr library (shared/fcocr), where the tests reach it.
"""

import json

from fcocr.pipeline import handle_oss_event, warm_up


def initialize(context):
    warm_up()  # validate settings and routes, load the engine's models: once per instance


def handler(event, context):
    return json.dumps(handle_oss_event(event, context), ensure_ascii=False)
