"""The trip: a saga of this engine that books a hotel, a flight and a car, and cancels them in reverse.

Everything that is the trip lives here: its definition (definition.py), its request models (requests.py) and
each step's own work (hotel.py, flight.py, car.py). saga/definition.py names it as the app the engine serves.
"""
