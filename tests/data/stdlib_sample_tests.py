import os
import sys
import time
import unittest


def setUpModule():
    pass


class Outcomes(unittest.TestCase):
    def test_ok(self):
        pass

    def test_fail(self):
        self.assertEqual(1, 2)

    def test_error(self):
        raise RuntimeError("boom ... with dots")

    @unittest.skip("needs ... something 'quoted'")
    def test_skipped(self):
        pass

    @unittest.expectedFailure
    def test_xfail(self):
        self.assertTrue(False)

    @unittest.expectedFailure
    def test_xpass(self):
        pass

    def test_subtests_fail(self):
        for i in range(3):
            with self.subTest(i=i):
                self.assertNotEqual(i, 1)

    def test_subtests_error_msg(self):
        with self.subTest("a message", x="y"):
            raise OSError("sub error")
        with self.subTest(x="z"):
            pass

    def test_subtests_skip(self):
        with self.subTest(k=1):
            self.skipTest("skipped one subtest")

    def test_noisy(self):
        print("noise ... ok", file=sys.stderr)
        os.write(2, b"raw fd noise\n")


@unittest.skipIf(True, "whole class skipped")
class SkippedClass(unittest.TestCase):
    def test_a(self):
        pass

    def test_b(self):
        pass


class ClassSetupError(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        raise ValueError("class setup broke")

    def test_never(self):
        pass


class ClassSetupSkip(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        raise unittest.SkipTest("resource denied in setUpClass")

    def test_never(self):
        pass


class Hang(unittest.TestCase):
    def test_zz_hang(self):
        if os.environ.get("GW_SAMPLE_HANG"):
            time.sleep(3600)
