from django.urls import path

from . import views

app_name = "democrm"
urlpatterns = [
    path("webhook/", views.webhook, name="webhook"),
    path("export.csv", views.export, name="export"),
]
