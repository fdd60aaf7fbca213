from django.urls import path

from .views import panel as views

urlpatterns = [
    path("p/<slug:slug>/events/", views.event_list, name="event-list"),
    path("p/<slug:slug>/events/export.csv", views.event_export, name="event-export"),
    path("p/<slug:slug>/clicks/", views.click_list, name="click-list"),
]
