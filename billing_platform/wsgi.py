"""The WSGI application, as gunicorn loads it in each worker.

Once Django is set up, the URLconf is loaded too (it imports every view, serializer and template
tag module), and everything loaded so far is moved out of the garbage collector's reach
(``gc.freeze``). Those hundreds of thousands of objects live as long as the worker; left tracked,
each full collection walked them all and stopped the worker for about 110 ms in the middle of a
request, which showed as the slowest 1 % of every read under load (``bench/api_reads.py``). Frozen,
a full collection walks only what requests made since, in a few milliseconds. What the imports left
as garbage is collected first, so that nothing is frozen that could have been freed; and a view
module that fails to import now stops the worker as it starts, not its first request.
"""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_platform.settings")
application = get_wsgi_application()
get_resolver().url_patterns  # noqa: B018 (imports the views now, before the freeze)
gc.collect()
gc.freeze()
