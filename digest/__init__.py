"""digest: a newsletter digest generator and mailer.

The pipeline runs one way, with frozen values between stages (see ``digest.models``)::

    schedules.yaml --config--> Newsletter
    Source --collect--> Page --extract--> Article --summarize--> Item
    [Item] --compose--> Issue --render--> Rendered
    Rendered x Subscriber --personalize--> Message --Backend.send--> Delivery --> store
"""

__version__ = "0.1.0"
