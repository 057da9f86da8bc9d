#!/usr/bin/env python3
"""Drives the demo chat in two headless Chromium windows (selenium + chromedriver).

Usage: scripts/browser-check.py http://127.0.0.1:6001/ [screenshot.png]
Needs: apt-get install chromium chromium-driver; pip install selenium. Logs in as alice and
bob, sends a room message and a private message, checks both arrive and that the sender sees
a receipt, and saves a screenshot of bob's window. Exits non-zero on any failure.
"""
import sys
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:6001/"
shot = sys.argv[2] if len(sys.argv) > 2 else "/tmp/demo.png"


def browser():
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1100,700"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options)


def login(driver, name):
    driver.get(url)
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "loginForm").submit()
    WebDriverWait(driver, 10).until(lambda d: "online as" in d.find_element(By.ID, "statusText").text)


def send(driver, text):
    box = driver.find_element(By.ID, "text")
    box.send_keys(text)
    driver.find_element(By.ID, "composer").submit()


def wait_text(driver, text, element="log"):
    WebDriverWait(driver, 10).until(lambda d: text in d.find_element(By.ID, element).text)


alice, bob = browser(), browser()
try:
    login(alice, "alice")
    login(bob, "bob")
    wait_text(alice, "bob", "users")
    send(alice, "hello lobby from alice")
    wait_text(bob, "hello lobby from alice")
    for user in alice.find_elements(By.CSS_SELECTOR, "#users *"):
        if user.text.strip() == "bob":
            user.click()
            break
    send(alice, "psst bob, private")
    wait_text(bob, "psst bob, private")
    WebDriverWait(alice, 10).until(lambda d: "acked" in d.find_element(By.ID, "log").text
                                   or "✓✓" in d.find_element(By.ID, "log").text)
    bob.save_screenshot(shot)
    print("browser check passed; screenshot:", shot)
finally:
    alice.quit()
    bob.quit()
