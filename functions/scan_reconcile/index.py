"""Timer: finish pending Content Security scans and viapi async jobs that no callback finished.

All logic lives in fcocr.reconcile.
"""

import json

from fcocr.reconcile import handle_timer_event


def handler(event, context):
    return json.dumps(handle_timer_event(event, context), ensure_ascii=False)
